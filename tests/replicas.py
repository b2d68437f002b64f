"""Several real `wxgpt serve` processes sharing one PostgreSQL database and one Redis, each
on its own loopback port, with the model's pace held by the test (tests/replica_process.py)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.replica_process import GATE_ENV, StepFile

READY_WITHIN_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ReplicaProcess:
    """One `wxgpt serve` process; its log goes to a file the test can read."""

    def __init__(self, name: str, folder: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/chat"
        self.log = folder / f"{name}.log"
        self.gate = StepFile(folder / f"{name}.gate")
        self._env = {
            **env,
            "WXGPT_PORT": str(self.port),
            "WXGPT_REPLICA_ID": name,
            GATE_ENV: str(self.gate.path),
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> "ReplicaProcess":
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.replica_process", "serve"],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"replica {self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"replica {self.name} did not become ready")

    def kill(self) -> None:
        """kill -9: no shutdown, no clean-up, as a crash."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=30)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            self._process = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def login_user(self, wid: str) -> tuple[str, int]:
        """Token and user id of a development login."""
        response = httpx.post(self.url + "/api/auth/login", json={"wid": wid, "nickname": wid})
        response.raise_for_status()
        body = response.json()
        return body["token"], body["user"]["id"]


def replica_env(
    *, db_url: str, redis_url: str, redis_prefix: str, model: Path, **extra: str
) -> dict[str, str]:
    """The environment the replicas of one set-up share."""
    return {
        **os.environ,
        "WXGPT_DB_URL": db_url,
        "WXGPT_REDIS_URL": redis_url,
        "WXGPT_REDIS_PREFIX": redis_prefix,
        "WXGPT_MODEL": str(model),
        "WXGPT_DEV_LOGIN": "1",
        "WXGPT_DEFAULT_QUOTA": "100",
        "WXGPT_LEASE_SECONDS": "2",
        "WXGPT_REPLY_SAVE_INTERVAL": "0.1",
        "WXGPT_RESUME_GRACE_SECONDS": "60",
        **extra,
    }

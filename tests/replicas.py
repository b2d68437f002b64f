"""Several real `wxgpt serve` processes sharing one PostgreSQL database and one Redis, each
on its own loopback port, with the model's pace held by the test (tests/pace.py)."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.live_server import PACED_SETTINGS, recv
from tests.pace import GATE_ENV, StepFile
from tests.serve_ready import ready_as

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
        """Launch the process and wait until it is ready."""
        return self.launch().wait_until_ready()

    def launch(self) -> "ReplicaProcess":
        """Start the process; `wait_until_ready` waits for it (replicas start side by side)."""
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.replica_process", "serve"],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_until_ready(self) -> "ReplicaProcess":
        assert self._process is not None, "launch() it first"
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"replica {self.name} exited:\n{self.log.read_text()[-3000:]}")
            if ready_as(self.url, self.name):
                return self
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


# tests.live_server's paced settings, as a replica process's environment.
PACED = {f"WXGPT_{name.upper()}": str(value) for name, value in PACED_SETTINGS.items()}


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
        # One test spreads 20 sockets of one user over the replicas.
        "WXGPT_MAX_SOCKETS_PER_USER": "25",
        **PACED,
        **extra,
    }


async def open_chat(replica: ReplicaProcess, token: str) -> ClientConnection:
    ws = await connect(replica.ws_url, additional_headers={"Authorization": f"Bearer {token}"})
    assert (await recv(ws))["type"] == "ready"
    return ws


def stored_reply(replica: ReplicaProcess, token: str, conversation_id: int) -> dict[str, Any]:
    response = httpx.get(
        f"{replica.url}/api/conversations/{conversation_id}/messages",
        headers={"Authorization": f"Bearer {token}"},
    )
    reply: dict[str, Any] = response.json()["items"][-1]
    return reply


async def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """The first truthy result of `check()`, polled; fails after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "it never happened"
        await asyncio.sleep(0.05)


async def text_at_the_gate(ws: ClientConnection, gate: StepFile, passes: int) -> str:
    """The deltas sent once the model has made `passes` forward passes and waits at the gate."""
    await eventually(lambda: gate.passes() >= passes)
    return await all_text_so_far(ws)


async def all_text_so_far(ws: ClientConnection) -> str:
    """The first delta, however long the replica takes to check and send it, then those that
    arrive until the socket goes quiet (the gate holds the model)."""
    frame = await recv(ws)
    text = ""
    while True:
        assert frame["type"] == "delta", frame
        text += frame["text"]
        try:
            frame = await recv(ws, timeout=1.0)
        except TimeoutError:
            return text

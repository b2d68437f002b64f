"""A real uvicorn server on a loopback port, run in a thread, with a real WebSocket client."""

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.app import create_app
from server.chat.settings import save_chat_settings
from server.config import Settings
from server.serving import uvicorn_config
from storage import admins
from storage.models import AdminRole

T = TypeVar("T")


class LiveServer:
    """Starts wxgpt with `settings` on 127.0.0.1 and a free port (or `port`, to stand in for a
    server that restarts); waits until /readyz is 200."""

    def __init__(self, settings: Settings, port: int = 0) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/chat"
        config = uvicorn_config(
            self.app, settings, ws_max_size=1 << 20, lifespan="on", timeout_graceful_shutdown=10
        )
        self._server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="wxgpt-test-server", daemon=True)

    def _run(self) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            await self._server.serve(sockets=[self._sock])

        asyncio.run(serve())

    def start(self, timeout: float = 60.0, *, wait_for_model: bool = True) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.started:
                response = httpx.get(self.url + "/readyz")
                if response.status_code == 200 or not wait_for_model:
                    return self
            if not self._thread.is_alive():
                raise RuntimeError("test server died while starting")
            time.sleep(0.05)
        raise TimeoutError("test server did not become ready")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def call(self, work: Awaitable[T]) -> T:
        """Await a coroutine or query on the server's own event loop (its database lives there)."""
        assert self.loop is not None

        async def run() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def login(self, wid: str | None = None) -> str:
        response = httpx.post(
            self.url + "/api/auth/login", json={"wid": wid or uuid.uuid4().hex[:12]}
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def login_user(self, wid: str) -> tuple[str, int]:
        """Token and user id of a development login (nickname = wid)."""
        response = httpx.post(self.url + "/api/auth/login", json={"wid": wid, "nickname": wid})
        response.raise_for_status()
        body = response.json()
        return body["token"], body["user"]["id"]

    def admin_login(self, username: str = "root", role: str = "admin") -> str:
        """Create an admin account (password "password-<username>") and return its session."""
        password = f"password-{username}"
        self.call(admins.create_admin(username, password, AdminRole(role)))
        response = httpx.post(
            self.url + "/api/admin/login", json={"username": username, "password": password}
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def get(self, path: str, token: str, **params: Any) -> httpx.Response:
        return httpx.get(
            self.url + path, params=params, headers={"Authorization": f"Bearer {token}"}
        )

    def connect(self, token: str | None, path: str = "/ws/chat") -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = self.ws_url.removesuffix("/ws/chat") + path
        return connect(url, additional_headers=headers, max_size=1 << 22)

    async def until_stop_flagged(self, timeout: float = 30.0) -> None:
        """Wait until every reply running here has its stop flag: for a stop sent where no
        ping can follow it (the console's own socket in a browser)."""
        deadline = time.monotonic() + timeout
        while True:
            if all(reply.reason is not None for reply in self.app.state.replies.live.running()):
                return
            assert time.monotonic() < deadline, "a running reply was never stopped"
            await asyncio.sleep(0.01)

    async def ops_snapshot_until(
        self, admin_token: str, check: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        """Poll /api/ops/snapshot until `check` holds for it; the last one if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            snapshot: dict[str, Any] = self.get("/api/ops/snapshot", admin_token).json()
            if check(snapshot) or time.monotonic() > deadline:
                return snapshot
            await asyncio.sleep(0.02)


# Replies arrive in checked pieces of at most this many characters (the smallest allowed).
OUTPUT_CHECK_CHARS = 8


# The settings under which forward passes bring deltas at a known rate, in every server a test
# starts (in-process, the mini-program suite's, replica subprocesses through their environment).
PACED_SETTINGS: dict[str, Any] = {
    # Replies arrive in checked pieces; the smallest keeps the tiny model's short replies in
    # several deltas, as tests of streaming, stop and resume need.
    "output_check_chars": OUTPUT_CHECK_CHARS,
    # Prefill chunks by tokens only, not by the machine's speed: a prompt takes the same
    # number of forward passes everywhere, as tests that hold the model on a gate count.
    "prefill_chunk_seconds": 0,
}


def passes_for_deltas(deltas: int) -> int:
    """Forward passes that surely bring `deltas` more deltas of the tiny model's reply: each of
    its tokens shows at least one character, and a piece is released at OUTPUT_CHECK_CHARS."""
    return deltas * OUTPUT_CHECK_CHARS


def start_test_server(
    model: Path,
    db_path: Path,
    chat: dict[str, Any] | None = None,
    *,
    ready_timeout: float = 60.0,
    **overrides: Any,
) -> LiveServer:
    """A started server on a SQLite file with dev login; greedy, short replies unless told."""
    values: dict[str, Any] = {
        "db_url": f"sqlite://{db_path}",
        "model": str(model),
        "dev_login": True,
        "default_quota": 100,
        "max_concurrent_generations": 2,
        **PACED_SETTINGS,
        **overrides,
    }
    server = LiveServer(Settings(_env_file=None, **values)).start(ready_timeout)
    server.call(save_chat_settings({"temperature": 0, "max_new_tokens": 12, **(chat or {})}))
    return server


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    """Status, error code and message of an error response."""
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def chat_frame(
    content: str, conversation_id: int | None = None, client_msg_id: str | None = None
) -> str:
    return json.dumps(
        {
            "type": "chat",
            "conversation_id": conversation_id,
            "content": content,
            "client_msg_id": client_msg_id or str(uuid.uuid4()),
        }
    )


async def recv(ws: ClientConnection, timeout: float = 30.0) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame


async def recv_until(
    ws: ClientConnection, *types: str, timeout: float = 60.0
) -> list[dict[str, Any]]:
    """Every frame up to and including the first whose type is in `types`."""
    frames = []
    while True:
        frame = await recv(ws, timeout)
        frames.append(frame)
        if frame["type"] in types:
            return frames


async def stop_reply(ws: ClientConnection) -> list[dict[str, Any]]:
    """Send `stop`, then a ping: the server reads a socket's frames in order, so once the pong
    is back the reply's stop flag is set. Returns the frames up to the pong."""
    await ws.send(json.dumps({"type": "stop"}))
    await ws.send(json.dumps({"type": "ping"}))
    return [f for f in await recv_until(ws, "pong") if f["type"] != "pong"]


async def until_logged(caplog: pytest.LogCaptureFixture, words: str, timeout: float = 30.0) -> None:
    """Wait until a record containing `words` was logged (from any thread)."""
    deadline = time.monotonic() + timeout
    while not any(words in record.getMessage() for record in caplog.records):
        assert time.monotonic() < deadline, f"nothing logged {words!r}"
        await asyncio.sleep(0.01)


async def closed_with(ws: ClientConnection, timeout: float = 30.0) -> tuple[int, str]:
    """The code and reason the server closes `ws` with (frames before the close are skipped)."""
    try:
        while True:
            await recv(ws, timeout)
    except ConnectionClosed as exc:
        closed = exc.rcvd
    if closed is None:
        raise AssertionError("the server closed without a close frame")
    return closed.code, closed.reason


def socket_of(snapshot: dict[str, Any], user_id: int) -> dict[str, Any] | None:
    """The ops row of the user's socket in a snapshot (the first, if they have several)."""
    return next((row for row in snapshot["sockets"] if row["user"]["id"] == user_id), None)


async def open_chat(server: LiveServer, token: str) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await server.connect(token)
    ready = await recv(ws)
    assert ready["type"] == "ready"
    return ws, ready

"""A real uvicorn server on a loopback port, run in a thread, with a real WebSocket client."""

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from server.app import create_app
from server.config import Settings
from storage import admins
from storage.models import AdminRole

T = TypeVar("T")


class LiveServer:
    """Starts wxgpt with `settings` on 127.0.0.1 and a free port; waits until /readyz is 200."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/chat"
        config = uvicorn.Config(
            self.app,
            log_config=None,
            ws_max_size=1 << 20,
            lifespan="on",
            timeout_graceful_shutdown=10,
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

    def connect(self, token: str | None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return connect(self.ws_url, additional_headers=headers, max_size=1 << 22)


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


async def open_chat(server: LiveServer, token: str) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await server.connect(token)
    ready = await recv(ws)
    assert ready["type"] == "ready"
    return ws, ready

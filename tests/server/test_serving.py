"""How uvicorn serves wxgpt: connections whose request never arrives whole are dropped after
WXGPT_REQUEST_TIMEOUT, and forwarded headers count only from WXGPT_TRUSTED_PROXIES."""

import asyncio
import socket
import time

import pytest
from websockets.asyncio.client import connect

from tests.live_server import LiveServer, open_chat, recv, socket_of
from tests.server.conftest import ServerFactory

TIMEOUT = 1.0
# However slow the machine: a dropped connection shows within this, a kept one stays open.
WAIT = 30.0

HALF_REQUESTS = [
    b"",  # connected, sent nothing
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n",  # headers never finished
    b"GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n{",  # body never finished
]


def _open_half(server: LiveServer, start: bytes) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    conn.sendall(start)
    return conn


def _all_dropped(conns: list[socket.socket]) -> bool:
    """Whether the server closes every connection within WAIT seconds (all waited together)."""
    deadline = time.monotonic() + WAIT
    for conn in conns:
        conn.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            while conn.recv(4096):
                pass
        except TimeoutError:
            return False
        except ConnectionResetError:
            pass
    return True


@pytest.mark.parametrize("start", HALF_REQUESTS)
def test_half_open_connections_are_dropped(start_server: ServerFactory, start: bytes) -> None:
    server = start_server(request_timeout=TIMEOUT)
    conns = [_open_half(server, start) for _ in range(10)]
    assert _all_dropped(conns)
    for conn in conns:
        conn.close()


def test_keep_alive_connections_get_the_deadline_again(start_server: ServerFactory) -> None:
    server = start_server(request_timeout=TIMEOUT)
    conn = _open_half(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.recv(4096).startswith(b"HTTP/1.1 200")
    conn.sendall(b"GET /healthz HTTP/1.1\r\n")
    assert _all_dropped([conn])
    conn.close()


async def test_a_slow_response_is_not_cut(start_server: ServerFactory) -> None:
    """The deadline is for the request; a socket served for longer stays open."""
    server = start_server(request_timeout=TIMEOUT)
    ws, _ = await open_chat(server, server.login())
    await asyncio.sleep(3 * TIMEOUT)
    await ws.send('{"type": "ping"}')
    assert (await recv(ws))["type"] == "pong"
    await ws.close()


async def _remote_seen(server: LiveServer, forwarded: str) -> str:
    token, user_id = server.login_user("forwarded")
    admin = server.admin_login()
    async with connect(
        server.ws_url,
        additional_headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": forwarded},
    ) as ws:
        await recv(ws)
        snapshot = await server.ops_snapshot_until(
            admin, lambda s: socket_of(s, user_id) is not None
        )
    row = socket_of(snapshot, user_id)
    assert row is not None
    remote: str = row["remote"]
    return remote.rsplit(":", 1)[0]


async def test_forwarded_headers_are_ignored_by_default(start_server: ServerFactory) -> None:
    server = start_server()
    assert await _remote_seen(server, "203.0.113.9") == "127.0.0.1"


async def test_forwarded_headers_count_from_trusted_proxies(start_server: ServerFactory) -> None:
    server = start_server(trusted_proxies="127.0.0.1")
    assert await _remote_seen(server, "203.0.113.9") == "203.0.113.9"

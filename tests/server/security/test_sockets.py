"""The guards every WebSocket passes: caps per user and per address (4429 with the limit), a
socket closed with 4401 when its token expires, and single-use tickets instead of tokens in
URLs."""

import time

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from websockets.asyncio.client import connect

from server.coordination.memory import MemoryCoordinator
from server.security.tickets import Grant, TicketBook
from tests.live_server import LiveServer, closed_with, open_chat, recv
from tests.server.conftest import ServerFactory


async def test_sockets_per_user_are_capped(start_server: ServerFactory) -> None:
    server = start_server(max_sockets_per_user=2)
    token = server.login("many")
    first, _ = await open_chat(server, token)
    second, _ = await open_chat(server, token)
    third = await server.connect(token)
    code, reason = await closed_with(third)
    assert code == 4429 and "this account has 2 open, the limit is 2" in reason
    other, _ = await open_chat(server, server.login("someone-else"))
    await first.close()
    await first.wait_closed()
    # The place freed by the closed socket is taken again once the server has let it go.
    deadline = time.monotonic() + 30
    while True:
        again = await server.connect(token)
        if (await recv(again))["type"] == "ready" or time.monotonic() > deadline:
            break
    for ws in (second, again, other):
        await ws.close()


async def test_sockets_per_address_are_capped(start_server: ServerFactory) -> None:
    server = start_server(max_sockets_per_address=3)
    open_ = [(await open_chat(server, server.login()))[0] for _ in range(3)]
    fourth = await server.connect(server.login())
    code, reason = await closed_with(fourth)
    assert code == 4429 and "this address has 3 open, the limit is 3" in reason
    for ws in open_:
        await ws.close()


def nearly_expired_token(server: LiveServer, user_id: int, seconds_left: int) -> str:
    """A real token of `user_id`, signed as if issued `ttl - seconds_left` seconds ago."""
    signed_at = int(time.time()) - server.settings.token_ttl + seconds_left

    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return signed_at

    serializer = URLSafeTimedSerializer(
        server.settings.secret_key, salt="wxgpt-user-token", signer=Backdated
    )
    return serializer.dumps({"uid": user_id})


async def test_a_socket_closes_when_its_token_expires(server: LiveServer) -> None:
    _, user_id = server.login_user("expiring")
    token = nearly_expired_token(server, user_id, seconds_left=2)
    ws, _ = await open_chat(server, token)
    await ws.send('{"type": "ping"}')
    assert (await recv(ws))["type"] == "pong", "the token is still valid"
    code, reason = await closed_with(ws, timeout=30)
    assert (code, reason) == (4401, "token expired; log in again")


async def test_an_ops_socket_closes_when_its_session_expires(server: LiveServer) -> None:
    admin = server.admin_login()
    ws = await server.connect(admin, "/ws/ops")
    assert (await recv(ws))["type"] == "snapshot"
    server.call(_expire_sessions_in(2))
    ws2 = await server.connect(admin, "/ws/ops")
    assert (await recv(ws2))["type"] == "snapshot"
    code, reason = await closed_with(ws2, timeout=30)
    assert code == 4401 and "expired" in reason
    await ws.close()


async def _expire_sessions_in(seconds: float) -> None:
    from datetime import UTC, datetime, timedelta

    from storage.models import AdminSession

    await AdminSession.all().update(expires_at=datetime.now(UTC) + timedelta(seconds=seconds))


def user_ticket(server: LiveServer, token: str) -> str:
    response = httpx.post(
        server.url + "/api/ws-ticket", headers={"Authorization": f"Bearer {token}"}
    )
    response.raise_for_status()
    assert response.json()["expires_in"] == 30
    ticket: str = response.json()["ticket"]
    return ticket


async def test_a_ticket_opens_one_chat_socket_once(server: LiveServer) -> None:
    token, user_id = server.login_user("ticketed")
    ticket = user_ticket(server, token)
    async with connect(f"{server.ws_url}?ticket={ticket}") as ws:
        ready = await recv(ws)
        assert ready["type"] == "ready" and ready["user"]["id"] == user_id
    async with connect(f"{server.ws_url}?ticket={ticket}") as again:
        code, reason = await closed_with(again)
    assert code == 4401 and "used or expired" in reason


async def test_a_chat_ticket_does_not_open_the_ops_socket(server: LiveServer) -> None:
    ticket = user_ticket(server, server.login())
    async with connect(f"ws://127.0.0.1:{server.port}/ws/ops?ticket={ticket}") as ws:
        code, _ = await closed_with(ws)
    assert code == 4401


async def test_admin_tickets_open_ops_and_the_playground(server: LiveServer) -> None:
    admin = server.admin_login()
    headers = {"Authorization": f"Bearer {admin}"}
    for socket, first in (("ops", "snapshot"), ("chat", "ready")):
        response = httpx.post(
            server.url + "/api/admin/ws-ticket", json={"socket": socket}, headers=headers
        )
        ticket = response.json()["ticket"]
        async with connect(f"ws://127.0.0.1:{server.port}/ws/{socket}?ticket={ticket}") as ws:
            frame = await recv(ws)
        assert frame["type"] == first
        if socket == "chat":
            assert frame["user"]["nickname"] == "root"


def test_the_ops_role_gets_no_playground_ticket(server: LiveServer) -> None:
    ops = server.admin_login("watcher", role="ops")
    response = httpx.post(
        server.url + "/api/admin/ws-ticket",
        json={"socket": "chat"},
        headers={"Authorization": f"Bearer {ops}"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize("query", ["token", "access_token"])
async def test_tokens_in_the_url_open_nothing(server: LiveServer, query: str) -> None:
    async with connect(f"{server.ws_url}?{query}={server.login()}") as ws:
        code, _ = await closed_with(ws)
    assert code == 4401


async def test_tickets_expire_and_are_used_once() -> None:
    coordinator = MemoryCoordinator("r", 5.0)
    grant = Grant("ops", "session", time.time() + 60)
    expired = TicketBook(coordinator, ttl_s=0.0)
    assert await expired.redeem(await expired.issue(grant), "ops") is None
    book = TicketBook(coordinator)
    assert await book.redeem(await book.issue(grant), "chat") is None, "a ticket for another socket"
    ticket = await book.issue(grant)
    assert await book.redeem(ticket, "ops") == grant
    assert await book.redeem(ticket, "ops") is None, "used once"

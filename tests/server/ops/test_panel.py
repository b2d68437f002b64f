"""/ws/ops and /api/ops on a real server: who may look, who may act, pushes, kick and stop."""

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.live_server import (
    LiveServer,
    chat_frame,
    error_of,
    open_chat,
    passes_for_deltas,
    recv,
    recv_until,
    until_logged,
)
from tests.pace import StepFile
from tests.server.chat.test_socket import wait_for_status
from tests.server.conftest import ServerFactory

ENGINE_KEYS = {
    "model",
    "device",
    "engine",
    "ready",
    "reason",
    "slots",
    "running",
    "queue_depth",
    "tokens_per_s_1m",
}


def post(server: LiveServer, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(server.url + path, headers=headers, timeout=30)


async def closed_with(ws: Any) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 10)
    return ws.close_code, ws.close_reason


@pytest.fixture
def held_replies(start_server: ServerFactory, gate: StepFile) -> LiveServer:
    """Replies that run only as far as the gate allows; one whose socket is gone is cancelled
    at once, not resumable."""
    return start_server(chat={"max_new_tokens": 40}, resume_grace_seconds=0)


async def test_ws_ops_refuses_without_an_admin_session(server: LiveServer) -> None:
    chat_token = server.login()
    for token in (None, chat_token, "not-a-session"):
        ws = await server.connect(token, "/ws/ops")
        code, _ = await closed_with(ws)
        assert code == 4401


def test_the_ops_role_may_look_but_not_act(server: LiveServer) -> None:
    ops = server.admin_login("watcher", role="ops")
    snapshot = server.get("/api/ops/snapshot", ops)
    assert snapshot.status_code == 200
    assert set(snapshot.json()) == {"sockets", "replica", "engine", "process", "t"}
    for action in ("disconnect", "stop"):
        refused = post(server, f"/api/ops/sockets/anything/{action}", ops)
        assert error_of(refused)[:2] == (403, "forbidden")
    assert error_of(server.get("/api/ops/snapshot", server.login()))[:2] == (401, "unauthorized")
    assert error_of(httpx.get(server.url + "/api/ops/snapshot"))[:2] == (401, "unauthorized")


def test_unknown_socket_is_not_found(server: LiveServer) -> None:
    admin = server.admin_login()
    for action in ("disconnect", "stop"):
        status, code, message = error_of(post(server, f"/api/ops/sockets/nope/{action}", admin))
        assert (status, code) == (404, "not_found")
        assert "nope" in message


async def test_ws_ops_pushes_a_snapshot_then_only_what_changed(
    held_replies: LiveServer, gate: StepFile
) -> None:
    server = held_replies
    ops = await server.connect(server.admin_login("watcher", role="ops"), "/ws/ops")
    first = await recv(ops)
    assert first["type"] == "snapshot"
    assert first["sockets"] == []
    assert set(first["engine"]) == ENGINE_KEYS
    assert first["engine"]["model"] == Path(server.settings.model or "").name
    assert first["process"]["rss_bytes"] > 0

    token, user_id = server.login_user("pushed")
    chat, _ = await open_chat(server, token)
    delta = await recv(ops)
    # The row may show up a moment before its `ready` frame is counted; wait for both.
    while not delta["upsert"] or not delta["upsert"][0]["bytes_out"]:
        delta = await recv(ops)
    assert delta["type"] == "delta"
    assert [row["user"]["id"] for row in delta["upsert"]] == [user_id]
    socket_id = delta["upsert"][0]["id"]
    assert set(delta) == {"type", "upsert", "remove", "replica", "engine", "process", "t"}

    idle = await recv(ops)
    assert (idle["upsert"], idle["remove"]) == ([], []), "an idle socket is not sent again"

    gate.allow_more(2)
    await chat.send(chat_frame("keep talking"))
    generating = await recv(ops)
    while not generating["upsert"] or generating["upsert"][0]["tokens"] != 2:
        generating = await recv(ops)
    assert generating["upsert"][0]["state"] == "generating"
    gate.allow_more(1)
    later = await recv(ops)
    while later["upsert"][0]["tokens"] == 2:
        later = await recv(ops)
    assert later["upsert"][0]["tokens"] == 3, "a generating row is sent again as it grows"
    assert later["engine"]["running"] == 1
    assert later["engine"]["tokens_per_s_1m"] > 0

    await chat.close()
    gone = await recv(ops)
    while not gone["remove"]:
        gone = await recv(ops)
    assert gone["remove"] == [socket_id]
    await ops.close()


async def test_kick_closes_the_socket_with_4000_and_is_audited(
    held_replies: LiveServer, gate: StepFile, caplog: pytest.LogCaptureFixture
) -> None:
    server = held_replies
    caplog.set_level("INFO", logger="server.chat.live_replies")
    admin = server.admin_login()
    token, user_id = server.login_user("kicked")
    chat, _ = await open_chat(server, token)
    gate.allow_more(passes_for_deltas(1))
    await chat.send(chat_frame("talk forever"))
    start = (await recv_until(chat, "delta"))[0]
    snapshot = server.get("/api/ops/snapshot", admin).json()
    socket_id = snapshot["sockets"][0]["id"]

    assert post(server, f"/api/ops/sockets/{socket_id}/disconnect", admin).status_code == 204
    while True:
        try:
            await recv(chat)
        except ConnectionClosed:
            break
    assert (chat.close_code, chat.close_reason) == (4000, "disconnected by operator")
    await server.ops_snapshot_until(admin, lambda s: not s["sockets"])
    await until_logged(caplog, "nobody came back within 0.0 s")
    gate.open()
    reply = await wait_for_status(server, token, start["conversation_id"], "interrupted")
    assert reply["finish_reason"] == "cancelled"
    entry = server.get("/api/admin/audit", admin, action="socket.kick").json()["items"][0]
    assert (entry["admin"], entry["target"]) == ("root", f"socket:{socket_id}")
    assert entry["detail"]["user_id"] == user_id


async def test_stop_ends_the_reply_as_if_the_user_sent_stop(
    held_replies: LiveServer, gate: StepFile
) -> None:
    server = held_replies
    admin = server.admin_login()
    token, _ = server.login_user("stopped")
    chat, _ = await open_chat(server, token)
    gate.allow_more(passes_for_deltas(1))
    await chat.send(chat_frame("talk forever"))
    start = (await recv_until(chat, "delta"))[0]
    socket_id = server.get("/api/ops/snapshot", admin).json()["sockets"][0]["id"]

    # One server: the stop is applied before the answer comes back.
    assert post(server, f"/api/ops/sockets/{socket_id}/stop", admin).status_code == 204
    gate.open()
    done = (await recv_until(chat, "done"))[-1]
    assert done["finish_reason"] == "cancelled"
    assert done["usage"]["completion_tokens"] < 40
    messages = server.get(f"/api/conversations/{start['conversation_id']}/messages", token)
    assert messages.json()["items"][-1]["status"] == "stopped"
    await chat.send(json.dumps({"type": "ping"}))
    assert await recv(chat) == {"type": "pong"}, "the socket stays open after a stop"
    entry = server.get("/api/admin/audit", admin, action="reply.stop").json()["items"][0]
    assert entry["target"] == f"socket:{socket_id}"
    await chat.close()

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from transformers import AutoTokenizer
from websockets.exceptions import ConnectionClosed

from generation.prompts import Turn, make_format
from tests.live_server import (
    LiveServer,
    chat_frame,
    open_chat,
    passes_for_deltas,
    recv,
    recv_until,
    stop_reply,
    until_logged,
)
from tests.pace import StepFile
from tests.pg import new_pg_database
from tests.server.conftest import ServerFactory


def stored_messages(server: LiveServer, token: str, conversation_id: int) -> list[dict]:
    response = server.get(f"/api/conversations/{conversation_id}/messages", token)
    assert response.status_code == 200
    items: list[dict] = response.json()["items"]
    return items


def steps_after_the_flag(caplog: pytest.LogCaptureFixture) -> int:
    """Decoding steps the model ran after its stop flag, from the reply's log line."""
    lines = [r.getMessage() for r in caplog.records if "after the stop flag" in r.getMessage()]
    assert lines, "the reply log line reports steps after the flag"
    return int(lines[-1].split(" steps after the stop flag")[0].rsplit(" ", 1)[-1])


async def test_reply_streams_start_deltas_done_and_is_stored(server: LiveServer) -> None:
    token = server.login()
    ws, ready = await open_chat(server, token)
    assert ready["quota"] == 100
    await ws.send(chat_frame("hello there"))
    frames = await recv_until(ws, "done")
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "start"
    assert kinds[-1] == "done"
    assert set(kinds[1:-1]) == {"delta"}
    assert len(kinds) > 3, "the reply should arrive in several pieces"
    done = frames[-1]
    assert done["finish_reason"] == "length"
    assert done["usage"]["completion_tokens"] == 12
    assert done["quota"] == 99
    text = "".join(f["text"] for f in frames if f["type"] == "delta")
    messages = stored_messages(server, token, frames[0]["conversation_id"])
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert messages[0]["content"] == "hello there"
    assert messages[1]["content"] == text
    assert messages[1]["id"] == frames[0]["message_id"] == done["message_id"]
    assert messages[1]["completion_tokens"] == 12
    assert messages[1]["first_token_ms"] is not None
    await ws.close()


async def test_second_turn_prompt_holds_the_first_turn(
    server: LiveServer, tiny_model: Path
) -> None:
    token = server.login()
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("the cat sat on the mat"))
    first = await recv_until(ws, "done")
    conversation_id = first[0]["conversation_id"]
    reply = "".join(f["text"] for f in first if f["type"] == "delta")
    await ws.send(chat_frame("what did the cat do", conversation_id))
    second = await recv_until(ws, "done")
    assert second[0]["conversation_id"] == conversation_id

    fmt = make_format(AutoTokenizer.from_pretrained(tiny_model))
    alone = fmt.encode([Turn("user", "what did the cat do")])
    with_memory = fmt.encode(
        [
            Turn("user", "the cat sat on the mat"),
            Turn("assistant", reply),
            Turn("user", "what did the cat do"),
        ]
    )
    assert second[-1]["usage"]["prompt_tokens"] == len(with_memory) > len(alone)
    assert first[-1]["usage"]["prompt_tokens"] == len(
        fmt.encode([Turn("user", "the cat sat on the mat")])
    )
    await ws.close()


async def test_stop_mid_reply_stops_the_model(start_server: ServerFactory, gate: StepFile) -> None:
    server = start_server(chat={"max_new_tokens": 500})
    token = server.login()
    ws, _ = await open_chat(server, token)
    gate.allow_more(passes_for_deltas(3))
    await ws.send(chat_frame("tell me a long story"))
    start = await recv(ws)
    assert start["type"] == "start"
    seen = [await recv(ws) for _ in range(3)]
    assert all(f["type"] == "delta" for f in seen)
    seen += await stop_reply(ws)
    gate.open()
    frames = await recv_until(ws, "done")
    done = frames[-1]
    assert done["finish_reason"] == "cancelled"
    assert done["usage"]["completion_tokens"] < 500
    text = "".join(f["text"] for f in seen + frames if f["type"] == "delta")
    reply = stored_messages(server, token, start["conversation_id"])[-1]
    assert (reply["status"], reply["finish_reason"], reply["content"]) == (
        "stopped",
        "cancelled",
        text,
    )
    # The socket stays usable after a stop.
    await ws.send(json.dumps({"type": "ping"}))
    assert await recv(ws) == {"type": "pong"}
    await ws.close()


async def test_model_stops_within_one_step_of_the_flag(
    start_server: ServerFactory, gate: StepFile, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_server(chat={"max_new_tokens": 500})
    token = server.login()
    ws, _ = await open_chat(server, token)
    caplog.set_level("INFO", logger="server.chat.replies")
    gate.allow_more(passes_for_deltas(1))
    await ws.send(chat_frame("go on"))
    await recv_until(ws, "delta")
    await stop_reply(ws)
    gate.open()
    await recv_until(ws, "done")
    assert steps_after_the_flag(caplog) <= 1
    await ws.close()


async def test_closing_the_socket_mid_reply_stores_the_partial_reply_after_the_grace_period(
    start_server: ServerFactory, gate: StepFile, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_server(resume_grace_seconds=0.2, chat={"max_new_tokens": 500})
    token = server.login()
    ws, _ = await open_chat(server, token)
    caplog.set_level("INFO", logger="server.chat")
    gate.allow_more(passes_for_deltas(2))
    await ws.send(chat_frame("keep talking"))
    start = await recv(ws)
    received = "".join([(await recv(ws))["text"] for _ in range(2)])
    await ws.close()
    await until_logged(caplog, "nobody came back within 0.2 s")
    gate.open()
    reply = await wait_for_status(server, token, start["conversation_id"], "interrupted")
    assert reply["content"].startswith(received)
    assert 0 < reply["completion_tokens"] < 500
    assert reply["finish_reason"] == "cancelled"
    assert steps_after_the_flag(caplog) <= 1, "the grace period ends through the same flag"


async def wait_for_status(
    server: LiveServer, token: str, conversation_id: int, status: str
) -> dict:
    deadline = time.monotonic() + 30
    while True:
        reply = stored_messages(server, token, conversation_id)[-1]
        if reply["status"] == status:
            return reply
        assert time.monotonic() < deadline, f"reply never became {status}: {reply}"
        await asyncio.sleep(0.05)


async def test_quota_reaches_zero_exactly_under_20_concurrent_sockets(
    start_server: ServerFactory,
) -> None:
    # Twenty sockets of one user, which the per-user cap would otherwise refuse.
    server = start_server(
        default_quota=5,
        max_concurrent_generations=2,
        max_sockets_per_user=20,
        chat={"max_new_tokens": 3},
    )
    token = server.login("quota-user")
    accepted: list[int] = []

    async def keep_asking() -> None:
        ws, _ = await open_chat(server, token)
        while True:
            await ws.send(chat_frame("hi"))
            frame = (await recv_until(ws, "done", "error"))[-1]
            if frame["type"] == "done":
                accepted.append(frame["quota"])
            elif frame["code"] == "quota_exhausted":
                break
            else:
                assert frame["code"] == "busy", frame
                await asyncio.sleep(0.01)
        await ws.close()

    await asyncio.gather(*(keep_asking() for _ in range(20)))
    assert sorted(accepted) == [0, 1, 2, 3, 4]
    assert server.get("/api/me", token).json()["quota"] == 0
    db = sqlite3.connect(server.settings.db_url.removeprefix("sqlite://"))
    rows = db.execute(
        "SELECT reason, count(*), sum(delta) FROM quota_ledger GROUP BY reason"
    ).fetchall()
    assert sorted(rows) == [("chat", 5, -5), ("signup", 1, 5)]


async def test_same_client_msg_id_is_answered_once_and_charged_once(server: LiveServer) -> None:
    token = server.login()
    ws, _ = await open_chat(server, token)
    frame = chat_frame("only once", client_msg_id="a1b2")
    await ws.send(frame)
    first = await recv_until(ws, "done")
    await ws.send(frame)
    again = await recv_until(ws, "done")
    assert again[0]["message_id"] == first[0]["message_id"]
    text = "".join(f["text"] for f in first if f["type"] == "delta")
    assert "".join(f["text"] for f in again if f["type"] == "delta") == text
    assert again[-1]["quota"] == first[-1]["quota"] == 99
    assert len(stored_messages(server, token, first[0]["conversation_id"])) == 2
    await ws.close()


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        ("{not json", "bad_request", "not valid JSON"),
        ('["chat"]', "bad_request", "JSON object"),
        ('{"type": "dance"}', "bad_request", "unknown frame type 'dance'"),
        ('{"type": "chat", "client_msg_id": "x"}', "bad_request", "content"),
        ('{"type": "chat", "content": "hi"}', "bad_request", "client_msg_id"),
        (
            '{"type": "chat", "content": "hi", "client_msg_id": "x", "conversation_id": "abc"}',
            "bad_request",
            "conversation_id",
        ),
        ('{"type": "chat", "content": "   ", "client_msg_id": "x"}', "empty", "empty"),
        (
            json.dumps({"type": "chat", "content": "x" * 2001, "client_msg_id": "x"}),
            "too_long",
            "limit is 2000 characters",
        ),
        (
            json.dumps({"type": "chat", "content": "x" * 20000, "client_msg_id": "x"}),
            "too_long",
            "limit is 16384 bytes",
        ),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_usable(
    server: LiveServer, payload: str, code: str, words: str
) -> None:
    token = server.login()
    ws, _ = await open_chat(server, token)
    await ws.send(payload)
    error = await recv(ws)
    assert (error["type"], error["code"]) == ("error", code)
    assert words in error["message"]
    await ws.send(json.dumps({"type": "ping"}))
    assert await recv(ws) == {"type": "pong"}
    await ws.close()


async def test_binary_frame_is_refused_politely(server: LiveServer) -> None:
    ws, _ = await open_chat(server, server.login())
    await ws.send(b"\x00\x01")
    error = await recv(ws)
    assert error["code"] == "bad_request"
    assert "binary" in error["message"]
    await ws.send(chat_frame("still here"))
    assert (await recv_until(ws, "done"))[-1]["type"] == "done"
    await ws.close()


async def test_message_too_long_for_the_model_names_the_token_limit(
    start_server: ServerFactory,
) -> None:
    server = start_server(max_message_chars=10_000, chat={"max_new_tokens": 500})
    token = server.login()
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("the cat sat on the mat " * 150))
    error = await recv(ws)
    assert error["code"] == "too_long"
    assert "the limit is 524 tokens" in error["message"], "1024 positions - 500 new tokens"
    assert server.get("/api/me", token).json()["quota"] == 100, "nothing charged"
    await ws.close()


async def test_max_new_tokens_too_big_for_the_model_is_capped(start_server: ServerFactory) -> None:
    server = start_server(chat={"max_new_tokens": 4000})
    ws, _ = await open_chat(server, server.login())
    await ws.send(chat_frame("go"))
    done = (await recv_until(ws, "done"))[-1]
    assert (done["finish_reason"], done["usage"]["completion_tokens"]) == ("length", 512)
    await ws.close()


async def test_another_users_conversation_is_not_found(server: LiveServer) -> None:
    owner_ws, _ = await open_chat(server, server.login())
    await owner_ws.send(chat_frame("mine"))
    conversation_id = (await recv_until(owner_ws, "done"))[0]["conversation_id"]
    intruder_ws, _ = await open_chat(server, server.login())
    await intruder_ws.send(chat_frame("let me in", conversation_id))
    error = await recv(intruder_ws)
    assert error["code"] == "not_found"
    await intruder_ws.send(chat_frame("gone", 999999))
    assert (await recv(intruder_ws))["code"] == "not_found"
    await owner_ws.close()
    await intruder_ws.close()


async def test_second_chat_while_streaming_is_busy(
    start_server: ServerFactory, gate: StepFile
) -> None:
    server = start_server(chat={"max_new_tokens": 100})
    token = server.login()
    ws, _ = await open_chat(server, token)
    gate.allow_more(passes_for_deltas(1))
    await ws.send(chat_frame("first"))
    await recv_until(ws, "delta")
    await ws.send(chat_frame("second"))
    frames = await recv_until(ws, "error")
    assert frames[-1]["code"] == "busy"
    other_ws, _ = await open_chat(server, token)
    await other_ws.send(chat_frame("from my other phone"))
    assert (await recv(other_ws))["code"] == "busy", "one reply at a time per user, across sockets"
    await stop_reply(ws)
    gate.open()
    assert (await recv_until(ws, "done"))[-1]["finish_reason"] == "cancelled"
    await ws.close()
    await other_ws.close()


async def test_full_queue_answers_busy_and_waiting_replies_see_their_place(
    start_server: ServerFactory, gate: StepFile
) -> None:
    server = start_server(max_concurrent_generations=1, max_queue=1, chat={"max_new_tokens": 60})
    sockets = [(await open_chat(server, server.login()))[0] for _ in range(3)]
    gate.allow_more(passes_for_deltas(1))
    await sockets[0].send(chat_frame("one"))
    await recv_until(sockets[0], "delta")
    await sockets[1].send(chat_frame("two"))
    assert await recv(sockets[1]) == {"type": "queued", "position": 1}
    await sockets[2].send(chat_frame("three"))
    full = await recv(sockets[2])
    assert full["code"] == "busy"
    assert "1 replies are already waiting" in full["message"]
    gate.open()
    assert (await recv_until(sockets[1], "start"))[-1]["type"] == "start"
    assert (await recv_until(sockets[1], "done"))[-1]["finish_reason"] == "length"
    for ws in sockets:
        await ws.close()


@pytest.mark.parametrize("token", [None, "forged.token.value"])
async def test_bad_token_closes_with_4401(server: LiveServer, token: str | None) -> None:
    ws = await server.connect(token)
    with pytest.raises(ConnectionClosed) as closed:
        await recv(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


async def test_banned_user_is_closed_with_4403(server: LiveServer) -> None:
    from storage.models import User

    token = server.login("troublemaker")

    async def ban() -> None:
        await User.filter(openid="dev:troublemaker").update(banned=True)

    server.call(ban())
    ws = await server.connect(token)
    with pytest.raises(ConnectionClosed) as closed:
        await recv(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_history_and_memory_survive_a_restart(start_server: ServerFactory) -> None:
    first = start_server()
    token = first.login("returning")
    ws, _ = await open_chat(first, token)
    await ws.send(chat_frame("remember the blue door"))
    frames = await recv_until(ws, "done")
    conversation_id = frames[0]["conversation_id"]
    await ws.close()
    before = stored_messages(first, token, conversation_id)
    first.stop()

    second = start_server()
    token = second.login("returning")
    assert stored_messages(second, token, conversation_id) == before
    ws, ready = await open_chat(second, token)
    assert ready["quota"] == 99
    await ws.send(chat_frame("which door", conversation_id))
    done = (await recv_until(ws, "done"))[-1]
    assert done["usage"]["prompt_tokens"] > frames[-1]["usage"]["prompt_tokens"]
    assert len(stored_messages(second, token, conversation_id)) == 4
    await ws.close()


async def test_repeat_of_a_message_whose_conversation_was_deleted(server: LiveServer) -> None:
    token = server.login()
    ws, _ = await open_chat(server, token)
    frame = chat_frame("soon gone", client_msg_id="gone-1")
    await ws.send(frame)
    conversation_id = (await recv_until(ws, "done"))[0]["conversation_id"]
    deleted = httpx.delete(
        f"{server.url}/api/conversations/{conversation_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert deleted.status_code == 204
    await ws.send(frame)
    error = await recv(ws)
    assert error["code"] == "not_found"
    assert server.get("/api/me", token).json()["quota"] == 99, "still charged once"
    await ws.close()


@pytest.mark.postgres
async def test_chat_with_memory_on_postgresql(start_server: ServerFactory) -> None:
    async with new_pg_database() as url:
        server = start_server(db_url=url)
        try:
            token = server.login()
            ws, _ = await open_chat(server, token)
            await ws.send(chat_frame("first on postgres"))
            first = await recv_until(ws, "done")
            conversation_id = first[0]["conversation_id"]
            await ws.send(chat_frame("second on postgres", conversation_id))
            second = await recv_until(ws, "done")
            await ws.close()
            assert second[-1]["usage"]["prompt_tokens"] > first[-1]["usage"]["prompt_tokens"]
            messages = stored_messages(server, token, conversation_id)
            assert [m["status"] for m in messages] == ["complete"] * 4
            assert messages[1]["content"] == "".join(
                f["text"] for f in first if f["type"] == "delta"
            )
            assert second[-1]["quota"] == 98
        finally:
            server.stop()

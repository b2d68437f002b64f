import asyncio
import json
import sqlite3
from typing import Any

import pytest

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
from tests.server.chat.test_socket import stored_messages, wait_for_status
from tests.server.conftest import ServerFactory

# Greedy, and the tiny model never ends a reply early: a reply is MAX_NEW_TOKENS long unless
# stopped. The gate holds the model, so a test drops, resumes or stops a reply mid-way however
# fast the machine is.
MAX_NEW_TOKENS = 60


@pytest.fixture
def start_held(start_server: ServerFactory, gate: StepFile) -> ServerFactory:
    """Start servers whose model runs only as far as the gate allows."""

    def start(**overrides: Any) -> LiveServer:
        return start_server(chat={"max_new_tokens": MAX_NEW_TOKENS}, **overrides)

    return start


def resume_frame(message_id: int, offset: int) -> str:
    return json.dumps({"type": "resume", "message_id": message_id, "offset": offset})


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "delta")


async def start_and_drop(
    server: LiveServer, gate: StepFile, token: str, client_msg_id: str | None = None
) -> tuple[dict[str, Any], str]:
    """Ask for a reply, read its start and three pieces, then drop the socket; the gate then
    holds the reply mid-way."""
    gate.allow_more(passes_for_deltas(3))
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("tell me everything", client_msg_id=client_msg_id))
    start = await recv(ws)
    assert start["type"] == "start"
    pieces = [await recv(ws) for _ in range(3)]
    assert [p["type"] for p in pieces] == ["delta"] * 3
    await ws.close()
    return start, text_of(pieces)


def ledger_rows(server: LiveServer, client_msg_id: str) -> list[tuple[str, int]]:
    db = sqlite3.connect(server.settings.db_url.removeprefix("sqlite://"))
    try:
        return db.execute(
            "SELECT reason, delta FROM quota_ledger WHERE client_msg_id = ?", (client_msg_id,)
        ).fetchall()
    finally:
        db.close()


async def test_drop_mid_reply_then_resume_from_the_last_offset_gives_the_whole_reply(
    start_held: ServerFactory, gate: StepFile
) -> None:
    server = start_held()
    token = server.login()
    start, received = await start_and_drop(server, gate, token)
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("meanwhile, another question"))
    busy = await recv(ws)
    assert busy["code"] == "busy", "the dropped reply still generates: one reply at a time"

    await ws.send(resume_frame(start["message_id"], len(received)))
    frames = [await recv(ws)]
    gate.open()
    frames += await recv_until(ws, "done")
    assert frames[0] == start
    assert [f["type"] for f in frames[1:-1]] == ["delta"] * (len(frames) - 2)
    assert len(frames) > 3, "caught up at once, then live pieces"
    done = frames[-1]
    assert (done["message_id"], done["finish_reason"]) == (start["message_id"], "length")
    assert done["usage"]["completion_tokens"] == MAX_NEW_TOKENS
    assert done["quota"] == 99
    reply = stored_messages(server, token, start["conversation_id"])[-1]
    assert (reply["status"], reply["id"]) == ("complete", start["message_id"])
    assert received + text_of(frames) == reply["content"]
    await ws.close()


async def test_resume_after_the_reply_ended_replays_the_stored_text(server: LiveServer) -> None:
    token = server.login()
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("short one"))
    first = await recv_until(ws, "done")
    text, message_id = text_of(first), first[0]["message_id"]
    assert len(text) > 5

    for offset in (0, 5, len(text)):
        await ws.send(resume_frame(message_id, offset))
        again = await recv_until(ws, "done")
        assert again[0] == first[0]
        assert text_of(again) == text[offset:]
        assert again[-1] == first[-1], "same finish_reason, usage and quota"
    await ws.send(resume_frame(message_id, len(text) + 1))
    error = await recv(ws)
    assert error["code"] == "bad_request"
    assert f"beyond the {len(text)} characters" in error["message"]
    await ws.close()


async def test_after_the_grace_period_the_reply_is_stored_interrupted_and_resumable(
    start_held: ServerFactory, gate: StepFile, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_held(resume_grace_seconds=0.2)
    caplog.set_level("INFO", logger="server.chat.live_replies")
    token = server.login()
    start, received = await start_and_drop(server, gate, token)
    await until_logged(caplog, "nobody came back within 0.2 s")
    gate.open()
    reply = await wait_for_status(server, token, start["conversation_id"], "interrupted")
    assert reply["content"].startswith(received)
    assert reply["completion_tokens"] < MAX_NEW_TOKENS

    ws, _ = await open_chat(server, token)
    await ws.send(resume_frame(start["message_id"], len(received)))
    frames = await recv_until(ws, "done")
    assert frames[0] == start
    assert received + text_of(frames) == reply["content"]
    done = frames[-1]
    assert done["finish_reason"] == "cancelled"
    assert done["usage"]["completion_tokens"] == reply["completion_tokens"]
    await ws.close()


async def test_stop_on_the_resuming_socket_stops_the_reply(
    start_held: ServerFactory, gate: StepFile
) -> None:
    server = start_held()
    token = server.login()
    start, received = await start_and_drop(server, gate, token)
    ws, _ = await open_chat(server, token)
    await ws.send(resume_frame(start["message_id"], len(received)))
    caught_up = [await recv(ws)]
    assert caught_up[0] == start, "the resuming socket watches the reply"
    caught_up += await stop_reply(ws)
    gate.open()
    frames = caught_up + await recv_until(ws, "done")
    assert frames[-1]["finish_reason"] == "cancelled"
    assert frames[-1]["usage"]["completion_tokens"] < MAX_NEW_TOKENS
    reply = stored_messages(server, token, start["conversation_id"])[-1]
    assert (reply["status"], reply["content"]) == ("stopped", received + text_of(frames))
    await ws.close()


async def test_same_client_msg_id_while_generating_joins_the_reply_and_charges_once(
    start_held: ServerFactory, gate: StepFile
) -> None:
    server = start_held()
    token = server.login()
    start, received = await start_and_drop(server, gate, token, client_msg_id="retry-1")
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("tell me everything", client_msg_id="retry-1"))
    frames = [await recv(ws)]
    gate.open()
    frames += await recv_until(ws, "done")
    assert frames[0] == start
    assert frames[-1]["quota"] == 99
    assert text_of(frames).startswith(received)
    messages = stored_messages(server, token, start["conversation_id"])
    assert len(messages) == 2, "one question, one reply"
    assert text_of(frames) == messages[-1]["content"]

    await ws.send(chat_frame("tell me everything", client_msg_id="retry-1"))
    replayed = await recv_until(ws, "done")
    assert replayed[0] == start
    assert text_of(replayed) == messages[-1]["content"]
    assert len(stored_messages(server, token, start["conversation_id"])) == 2
    assert server.get("/api/me", token).json()["quota"] == 99
    assert ledger_rows(server, "retry-1") == [("chat", -1)]
    await ws.close()


async def test_double_tap_on_two_open_sockets_streams_one_reply_to_both(
    start_held: ServerFactory, gate: StepFile
) -> None:
    server = start_held()
    token = server.login()
    first, _ = await open_chat(server, token)
    second, _ = await open_chat(server, token)
    gate.allow_more(passes_for_deltas(1))
    await first.send(chat_frame("twice", client_msg_id="tap-tap"))
    early = await recv_until(first, "delta")
    await second.send(chat_frame("twice", client_msg_id="tap-tap"))
    on_second = [await recv(second)]
    assert on_second[0]["type"] == "start"
    gate.open()
    on_second += await recv_until(second, "done")
    on_first = early + await recv_until(first, "done")
    assert on_first[0] == on_second[0]
    reply = stored_messages(server, token, on_second[0]["conversation_id"])[-1]
    assert reply["content"] == text_of(on_first) == text_of(on_second)
    assert on_first[-1] == on_second[-1]
    assert ledger_rows(server, "tap-tap") == [("chat", -1)]
    await first.close()
    await second.close()


async def test_foreign_stale_and_non_reply_message_ids_are_not_found(
    start_held: ServerFactory, gate: StepFile
) -> None:
    server = start_held()
    owner = server.login()
    owner_ws, _ = await open_chat(server, owner)
    await owner_ws.send(chat_frame("private"))
    start = await recv(owner_ws)
    intruder_ws, _ = await open_chat(server, server.login())
    question_id = start["message_id"] - 1
    for message_id in (start["message_id"], question_id, 999_999):
        await intruder_ws.send(resume_frame(message_id, 0))
        error = await recv(intruder_ws)
        assert (error["code"], error["message"]) == ("not_found", f"reply {message_id} not found")
    await owner_ws.send(resume_frame(question_id, 0))
    assert (await recv_until(owner_ws, "error"))[-1]["code"] == "busy", "still streaming here"
    gate.open()
    await recv_until(owner_ws, "done")
    await owner_ws.send(resume_frame(question_id, 0))
    assert (await recv(owner_ws))["code"] == "not_found", "a question is not a reply"
    await intruder_ws.send(resume_frame(start["message_id"], 0))
    assert (await recv(intruder_ws))["code"] == "not_found", "stored, still not theirs"
    await owner_ws.close()
    await intruder_ws.close()


async def test_bad_offsets_are_refused_with_the_limit(
    start_held: ServerFactory, gate: StepFile
) -> None:
    server = start_held()
    token = server.login()
    start, received = await start_and_drop(server, gate, token)
    ws, _ = await open_chat(server, token)
    await ws.send(resume_frame(start["message_id"], -1))
    error = await recv(ws)
    assert error["code"] == "bad_request"
    assert "offset: Input should be greater than or equal to 0" in error["message"]
    await ws.send(resume_frame(start["message_id"], 10**6))
    error = await recv(ws)
    assert error["code"] == "bad_request"
    assert "offset 1000000 is beyond the" in error["message"]
    gate.open()
    await ws.send(resume_frame(start["message_id"], len(received)))
    assert (await recv_until(ws, "done"))[-1]["finish_reason"] == "length"
    await ws.close()


async def test_shutdown_stores_a_running_reply_as_interrupted(
    start_held: ServerFactory, gate: StepFile, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_held()
    caplog.set_level("INFO", logger="server.chat.live_replies")
    token = server.login()
    gate.allow_more(passes_for_deltas(3))
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("until the lights go out"))
    start = await recv(ws)
    received = text_of([await recv(ws) for _ in range(3)])
    stopping = asyncio.create_task(asyncio.to_thread(server.stop))
    await until_logged(caplog, "shutting down: storing 1 running replies")
    gate.open()
    await stopping
    db = sqlite3.connect(server.settings.db_url.removeprefix("sqlite://"))
    status, content, tokens = db.execute(
        "SELECT status, content, completion_tokens FROM messages WHERE id = ?",
        (start["message_id"],),
    ).fetchone()
    db.close()
    assert status == "interrupted"
    assert content.startswith(received)
    assert 0 < tokens < MAX_NEW_TOKENS


async def test_retry_while_waiting_in_line_tells_the_place_then_streams(
    start_held: ServerFactory, gate: StepFile
) -> None:
    server = start_held(max_concurrent_generations=1)
    gate.allow_more(passes_for_deltas(1))
    first_ws, _ = await open_chat(server, server.login())
    await first_ws.send(chat_frame("I got the slot"))
    await recv_until(first_ws, "delta")
    token = server.login()
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("I wait", client_msg_id="in-line"))
    assert await recv(ws) == {"type": "queued", "position": 1}
    await ws.close()
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("I wait", client_msg_id="in-line"))
    assert await recv(ws) == {"type": "queued", "position": 1}
    await stop_reply(first_ws)
    gate.open()
    frames = await recv_until(ws, "done")
    assert frames[0]["type"] == "start"
    assert frames[-1]["finish_reason"] == "length"
    reply = stored_messages(server, token, frames[0]["conversation_id"])[-1]
    assert (reply["status"], reply["content"]) == ("complete", text_of(frames))
    assert ledger_rows(server, "in-line") == [("chat", -1)]
    await ws.close()
    await first_ws.close()

import asyncio
import json

from tests.live_server import (
    LiveServer,
    chat_frame,
    open_chat,
    passes_for_deltas,
    recv,
    recv_until,
    stop_reply,
)
from tests.pace import StepFile
from tests.server.conftest import ServerFactory

QUESTIONS = ["hello there", "what do cats eat when nobody is looking", "a story please"]


async def ask(server: LiveServer, content: str) -> tuple[str, dict]:
    ws, _ = await open_chat(server, server.login())
    await ws.send(chat_frame(content))
    frames = await recv_until(ws, "done")
    await ws.close()
    text = "".join(f["text"] for f in frames if f["type"] == "delta")
    return text, frames[-1]


async def test_batched_engine_serves_concurrent_chats_like_the_single_one(
    start_server: ServerFactory,
) -> None:
    single = start_server(
        db_name="single.sqlite3", chat={"repetition_penalty": 1.3}, engine="single"
    )
    expected = [await ask(single, question) for question in QUESTIONS]
    single.stop()  # one server (one Tortoise context) per process at a time
    batched = start_server(
        db_name="batched.sqlite3",
        chat={"repetition_penalty": 1.3},
        engine="batched",
        max_concurrent_generations=8,
    )
    answers = await asyncio.gather(*(ask(batched, question) for question in QUESTIONS))
    for (text, done), (expected_text, expected_done) in zip(answers, expected, strict=True):
        assert text == expected_text
        assert done["finish_reason"] == expected_done["finish_reason"] == "length"
        assert done["usage"] == expected_done["usage"]


async def test_stop_on_the_batched_engine(start_server: ServerFactory, gate: StepFile) -> None:
    server = start_server(chat={"max_new_tokens": 500}, engine="batched")
    ws, _ = await open_chat(server, server.login())
    gate.allow_more(passes_for_deltas(1))
    await ws.send(chat_frame("tell me a long story"))
    await recv_until(ws, "delta")
    await stop_reply(ws)
    gate.open()
    done = (await recv_until(ws, "done"))[-1]
    assert done["finish_reason"] == "cancelled"
    assert done["usage"]["completion_tokens"] < 500
    await ws.send(json.dumps({"type": "ping"}))
    assert await recv(ws) == {"type": "pong"}
    await ws.close()

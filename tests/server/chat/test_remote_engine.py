"""Chats over /ws/chat on the remote engine: the real `transformers serve` on loopback (and a
scripted stand-in for what it cannot be made to do), end to end through the server."""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.config import Settings
from tests.inference_engine import ServeProcess, StandInEngine, chat_chunk, free_port
from tests.live_server import (
    LiveServer,
    chat_frame,
    error_of,
    open_chat,
    passes_for_deltas,
    recv,
    recv_until,
    stop_reply,
)
from tests.server.chat.test_socket import stored_messages
from tests.server.conftest import ServerFactory
from tests.server.ops.test_metrics import scrape, value


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "delta")


def direct_chat(engine: ServeProcess, messages: list[dict[str, str]], max_tokens: int) -> Any:
    """The engine's own answer to the same request, streamed as wxgpt asks for it."""
    body = {
        "model": str(engine.model),
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    text, finish, usage = "", None, None
    with httpx.stream("POST", engine.url + "/chat/completions", json=body, timeout=60) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = json.loads(line.removeprefix("data: "))
                # The usage comes in a chunk of its own, the last, with no choices.
                usage = chunk.get("usage") or usage
                if choices := chunk["choices"]:
                    text += choices[0]["delta"].get("content") or ""
                    finish = choices[0].get("finish_reason") or finish
    return text, finish, usage


async def wait_until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition did not come true"
        await asyncio.sleep(0.05)


def readyz(server: LiveServer) -> httpx.Response:
    return httpx.get(server.url + "/readyz", timeout=30)


async def test_a_chat_streams_what_the_engine_generates(
    start_server: ServerFactory, served_chat_model: ServeProcess, chat_model: Path
) -> None:
    server = start_server(inference_url=served_chat_model.url, model=chat_model)
    ready = readyz(server).json()
    assert (ready["status"], ready["model"], ready["engine"]) == (
        "ready",
        str(chat_model),
        "remote",
    )
    token = server.login()
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("the cat sat on the mat"))
    first = await recv_until(ws, "done")
    conversation_id = first[0]["conversation_id"]
    await ws.send(chat_frame("what did the cat do", conversation_id))
    second = await recv_until(ws, "done")
    await ws.close()

    asked = [{"role": "user", "content": "the cat sat on the mat"}]
    text, finish, usage = direct_chat(served_chat_model, asked, 12)
    assert text_of(first) == text
    assert len([f for f in first if f["type"] == "delta"]) > 1, "streamed, not in one piece"
    assert first[-1]["finish_reason"] == finish == "length"
    assert first[-1]["usage"] == {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
    }
    # The second turn carries the first as chat memory, as the engine is sent it.
    asked += [
        {"role": "assistant", "content": text},
        {"role": "user", "content": "what did the cat do"},
    ]
    text, _, usage = direct_chat(served_chat_model, asked, 12)
    assert text_of(second) == text
    assert second[-1]["usage"]["prompt_tokens"] == usage["prompt_tokens"]
    messages = stored_messages(server, token, conversation_id)
    assert [m["content"] for m in messages] == [
        "the cat sat on the mat",
        text_of(first),
        "what did the cat do",
        text,
    ]
    samples = scrape(server)
    assert value(samples, "wxgpt_engine_ready") == 1
    assert value(samples, "wxgpt_engine_first_token_seconds_count") == 2
    assert value(samples, "wxgpt_engine_request_duration_seconds_count") == 2
    assert value(samples, "wxgpt_replies_total", finish_reason="length") == 2


async def test_stop_closes_the_stream_and_the_engine_aborts(
    start_server: ServerFactory, held_engine: ServeProcess, chat_model: Path
) -> None:
    server = start_server(
        inference_url=held_engine.url, model=chat_model, chat={"max_new_tokens": 40}
    )
    token = server.login()
    ws, _ = await open_chat(server, token)
    seen = len(held_engine.generations())
    held_engine.gate.allow_more(passes_for_deltas(1))
    await ws.send(chat_frame("tell me a long story"))
    frames = await recv_until(ws, "delta")
    frames += await stop_reply(ws)
    # The stream is closed while the engine waits at its gate: its next token finds it gone.
    frames += await recv_until(ws, "done")
    held_engine.gate.open()
    await ws.close()
    done = frames[-1]
    assert done["finish_reason"] == "cancelled"
    assert done["usage"]["completion_tokens"] < 40
    reply = stored_messages(server, token, frames[0]["conversation_id"])[-1]
    assert (reply["status"], reply["content"]) == ("stopped", text_of(frames))
    # The engine's own log: its generation was aborted (the client went), not run to the end.
    how, tokens = (await held_engine.wait_for_generations(seen + 1))[seen]
    assert how == "aborted"
    assert tokens < 40


async def test_a_reply_nobody_comes_back_for_is_aborted_in_the_engine(
    start_server: ServerFactory, held_engine: ServeProcess, chat_model: Path
) -> None:
    server = start_server(
        inference_url=held_engine.url,
        model=chat_model,
        resume_grace_seconds=0.2,
        chat={"max_new_tokens": 40},
    )
    token = server.login()
    ws, _ = await open_chat(server, token)
    seen = len(held_engine.generations())
    held_engine.gate.allow_more(passes_for_deltas(1))
    await ws.send(chat_frame("tell me a long story"))
    start = await recv(ws)
    await recv_until(ws, "delta")
    await ws.close()
    await wait_until(
        lambda: (
            stored_messages(server, token, start["conversation_id"])[-1]["status"] == "interrupted"
        )
    )
    held_engine.gate.open()
    how, tokens = (await held_engine.wait_for_generations(seen + 1))[seen]
    assert (how, tokens < 40) == ("aborted", True)


async def test_an_engine_killed_mid_reply_fails_it_refunded_and_readyz_follows(
    start_server: ServerFactory, chat_model: Path, tmp_path: Path
) -> None:
    engine = ServeProcess(chat_model, tmp_path / "serve.log").start()
    try:
        server = start_server(
            inference_url=engine.url,
            model=chat_model,
            inference_health_interval=0.1,
            chat={"max_new_tokens": 40},
        )
        token = server.login()
        ws, ready = await open_chat(server, token)
        engine.gate.allow_more(passes_for_deltas(1))
        await ws.send(chat_frame("tell me a long story"))
        frames = await recv_until(ws, "delta")
        engine.kill()
        frames += await recv_until(ws, "error", "done")
        error = frames[-1]
        assert error["code"] == "internal"
        assert f"your quota was refunded (now {ready['quota']})" in error["message"]
        assert server.get("/api/me", token).json()["quota"] == ready["quota"]
        reply = stored_messages(server, token, frames[0]["conversation_id"])[-1]
        assert (reply["status"], reply["finish_reason"]) == ("failed", "error")
        assert value(scrape(server), "wxgpt_engine_errors_total", kind="disconnected") == 1

        await wait_until(lambda: readyz(server).status_code == 503)
        status, code, reason = error_of(readyz(server))
        assert (status, code) == (503, "unavailable")
        assert reason.startswith("the inference engine is unreachable")
        assert value(scrape(server), "wxgpt_engine_ready") == 0
        # While it is down, a chat is refused before anything is charged.
        await ws.send(chat_frame("anyone there?"))
        refused = await recv(ws)
        assert (refused["type"], refused["code"]) == ("error", "internal")
        assert "the inference engine is unreachable" in refused["message"]
        assert server.get("/api/me", token).json()["quota"] == ready["quota"]

        # Started off the loop, which must go on answering the socket's keepalive pings.
        restarted = ServeProcess(chat_model, tmp_path / "serve.log", port=engine.port)
        engine = await asyncio.to_thread(restarted.start)
        await wait_until(lambda: readyz(server).status_code == 200)
        engine.gate.allow_more(passes_for_deltas(1))
        await ws.send(chat_frame("and now?"))
        await recv_until(ws, "delta")
        await stop_reply(ws)
        engine.gate.open()
        assert (await recv_until(ws, "done"))[-1]["finish_reason"] == "cancelled"
        await ws.close()
    finally:
        engine.kill()


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [(429, {"Retry-After": "7"}, "try again in 7 s"), (503, {}, "try again in a moment")],
)
async def test_a_busy_engine_turns_the_reply_away_refunded(
    start_server: ServerFactory,
    chat_model: Path,
    status: int,
    headers: dict[str, str],
    wait: str,
) -> None:
    stand_in = StandInEngine(status=status, headers=headers).start()
    try:
        server = start_server(inference_url=stand_in.url, model=chat_model)
        token = server.login()
        ws, ready = await open_chat(server, token)
        await ws.send(chat_frame("hello"))
        frames = await recv_until(ws, "error", "done")
        await ws.close()
    finally:
        stand_in.stop()
    error = frames[-1]
    assert error["code"] == "busy"
    assert error["message"].endswith(wait)
    assert f"your quota was refunded (now {ready['quota']})" in error["message"]
    assert server.get("/api/me", token).json()["quota"] == ready["quota"]
    question, reply = stored_messages(server, token, frames[0]["conversation_id"])
    assert question["content"] == "hello"
    assert (reply["status"], reply["content"]) == ("failed", "")
    samples = scrape(server)
    assert value(samples, "wxgpt_engine_errors_total", kind="busy") == 1
    assert value(samples, "wxgpt_chat_errors_total", code="busy") == 1


async def test_the_api_key_is_sent_and_never_logged(
    start_server: ServerFactory, chat_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-wxgpt-test-" + "k" * 24
    caplog.set_level(logging.DEBUG)
    stand_in = StandInEngine(
        chunks=[chat_chunk("Hello"), chat_chunk(" world", "stop"), chat_chunk(usage=(9, 2))]
    ).start()
    try:
        server = start_server(inference_url=stand_in.url, inference_api_key=key, model=chat_model)
        token = server.login()
        ws, _ = await open_chat(server, token)
        await ws.send(chat_frame("hello"))
        frames = await recv_until(ws, "done")
        await ws.close()
        seen_by_admins = [
            readyz(server).text,
            httpx.get(server.url + "/metrics").text,
            server.get("/api/ops/snapshot", server.admin_login()).text,
        ]
    finally:
        stand_in.stop()
    assert text_of(frames) == "Hello world"
    assert frames[-1]["finish_reason"] == "stop"
    assert frames[-1]["usage"] == {"prompt_tokens": 9, "completion_tokens": 2}
    # Every request carried it: the probes of /health and /v1/models and the reply.
    assert {headers["authorization"] for headers, _ in stand_in.requests} == {f"Bearer {key}"}
    asked = [body.get("messages") for _, body in stand_in.requests]
    assert [{"role": "user", "content": "hello"}] in asked
    assert key not in repr(server.settings)
    assert caplog.records, "the log was captured"
    for record in caplog.records:
        assert key not in record.getMessage()
    for text in seen_by_admins:
        assert key not in text


async def test_an_engine_down_at_start_is_reported_and_nothing_is_charged(
    chat_model: Path, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,
        db_url=f"sqlite://{tmp_path / 'db.sqlite3'}",
        model=str(chat_model),
        inference_url=f"http://127.0.0.1:{free_port()}/v1",
        dev_login=True,
    )
    server = LiveServer(settings).start(wait_for_model=False)
    try:
        await wait_until(lambda: "unreachable" in readyz(server).text)
        status, code, reason = error_of(readyz(server))
        assert (status, code) == (503, "unavailable")
        assert reason.startswith("the inference engine is unreachable")
        token = server.login()
        ws, ready = await open_chat(server, token)
        await ws.send(chat_frame("anyone there?"))
        error = await recv(ws)
        await ws.close()
        assert error["code"] == "internal"
        assert error["message"].startswith("replies cannot be generated now: the inference engine")
        assert server.get("/api/me", token).json()["quota"] == ready["quota"]
    finally:
        server.stop()

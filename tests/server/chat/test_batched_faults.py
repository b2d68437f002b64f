"""Failures injected into the batched engine of a real server: the users whose replies they
hit get `internal` and their unit back, the others go on, and a failed engine shows in
/readyz and /metrics."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from websockets.asyncio.client import ClientConnection

from server.config import Settings
from tests.live_server import LiveServer, chat_frame, error_of, open_chat, recv_until
from tests.model_passes import ForwardPasses, Pass, eventually
from tests.server.conftest import ServerFactory
from tests.server.ops.test_metrics import scrape, value
from tests.tiny_model import build_tiny_sliding_window


def passes_of(server: LiveServer) -> ForwardPasses:
    engine = server.app.state.engine.engine
    return ForwardPasses(engine.loaded.model)


@pytest.fixture
def server(start_server: ServerFactory) -> LiveServer:
    return start_server(chat={"max_new_tokens": 400}, max_concurrent_generations=4)


@pytest.fixture
def passes(server: LiveServer) -> Iterator[ForwardPasses]:
    with passes_of(server).installed() as passes:
        yield passes


async def ask(server: LiveServer, content: str) -> list[dict]:
    ws, _ = await open_chat(server, server.login())
    await ws.send(chat_frame(content))
    return await rest_of(ws)


async def rest_of(ws: ClientConnection) -> list[dict]:
    frames = await recv_until(ws, "done", "error")
    await ws.close()
    return frames


async def second_joins(
    server: LiveServer, passes: ForwardPasses
) -> tuple["asyncio.Task[list[dict]]", "asyncio.Task[list[dict]]"]:
    """A first reply held after its prefill, then a second prefilled while the first runs."""
    start = len(passes.seen)
    passes.hold(1)
    first = asyncio.create_task(ask(server, "hello there"))
    await passes.held()
    ws, _ = await open_chat(server, server.login())
    await ws.send(chat_frame("a story please"))
    await recv_until(ws, "start")  # the second reply is handed to the engine
    await passes.step_until(lambda seen: seen.index > start and not seen.is_step, start)
    passes.open()
    return first, asyncio.create_task(rest_of(ws))


def refunded(frames: list[dict]) -> str:
    last = frames[-1]
    assert (last["type"], last["code"]) == ("error", "internal")
    message: str = last["message"]
    assert "your quota was refunded (now 100)" in message
    return message


def two_rows(seen: Pass) -> bool:
    return seen.is_step and seen.rows == 2


async def test_nan_logits_for_one_user_end_only_that_reply_refunded(
    server: LiveServer, passes: ForwardPasses
) -> None:
    passes.nan_logits(two_rows, row=1)
    first, second = await second_joins(server, passes)
    broken, fine = await asyncio.gather(second, first)
    refunded(broken)
    assert fine[-1]["type"] == "done"
    assert (fine[-1]["finish_reason"], fine[-1]["quota"]) == ("length", 99)
    assert httpx.get(server.url + "/readyz").status_code == 200
    assert value(scrape(server), "wxgpt_engine_errors_total", kind="sampling") == 1


async def test_out_of_memory_ends_that_steps_replies_and_the_next_chat_works(
    server: LiveServer, passes: ForwardPasses
) -> None:
    passes.fail(two_rows, torch.OutOfMemoryError("out of memory (injected)"))
    first, second = await second_joins(server, passes)
    for frames in await asyncio.gather(first, second):
        refunded(frames)
    assert httpx.get(server.url + "/readyz").status_code == 200
    assert value(scrape(server), "wxgpt_engine_errors_total", kind="decode_step") == 1
    assert (await ask(server, "hello again"))[-1]["type"] == "done"


async def test_a_broken_model_fails_the_engine_visibly(
    server: LiveServer, passes: ForwardPasses
) -> None:
    passes.fail(lambda seen: True, RuntimeError("device lost (injected)"), every=True)
    for _ in range(3):
        refunded(await ask(server, "hello there"))
    ready = httpx.get(server.url + "/readyz")
    status, code, message = error_of(ready)
    assert (status, code) == (503, "unavailable")
    assert "the batched engine failed" in message and "device lost (injected)" in message
    samples = scrape(server)
    assert value(samples, "wxgpt_engine_ready") == 0
    assert value(samples, "wxgpt_engine_errors_total", kind="engine_failed") == 1
    refused = await ask(server, "anyone there?")
    assert refused[-1]["code"] == "internal"
    assert "replies cannot be generated now: the batched engine failed" in refused[-1]["message"]


async def test_a_model_the_batched_engine_cannot_serve_is_refused_at_start(
    tmp_path: Path,
) -> None:
    model = build_tiny_sliding_window(tmp_path / "sliding")
    settings = Settings(
        _env_file=None,
        db_url=f"sqlite://{tmp_path / 'wxgpt.sqlite3'}",
        model=str(model),
        engine="batched",
        dev_login=True,
    )
    server = LiveServer(settings).start(wait_for_model=False)
    try:
        await eventually(lambda: server.app.state.engine.error is not None)
        status, code, message = error_of(httpx.get(server.url + "/readyz"))
        assert (status, code) == (503, "unavailable")
        assert "model failed to load: the batched engine needs a full-attention cache" in message
        assert "WXGPT_ENGINE=single" in message
    finally:
        server.stop()

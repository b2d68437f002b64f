"""Long messages on a real server with the batched engine: refused beyond the token limit,
and the longest allowed one does not stall another user's stream."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import LiveServer, chat_frame, open_chat, recv, recv_until
from tests.model_passes import ForwardPasses
from tests.server.conftest import ServerFactory

LIMIT = 4000
CHUNK = 256
# Rare CJK characters (U+20000 on) are four tokens each for the test tokenizer, as they were
# for the user who stalled everyone: a thousand pass the 2000-character limit.
LONGEST = "\U00020000" * (LIMIT // 4)


@pytest.fixture
def server(start_server: ServerFactory, chat_model: Path) -> LiveServer:
    return start_server(
        model=chat_model,
        chat={"max_new_tokens": 100, "repetition_penalty": 1.3},
        max_message_tokens=LIMIT,
        prefill_chunk_tokens=CHUNK,
        prefill_chunk_seconds=0,  # chunks of CHUNK tokens, whatever the machine's speed
        max_concurrent_generations=4,
    )


@pytest.fixture
def passes(server: LiveServer) -> Iterator[ForwardPasses]:
    with ForwardPasses(server.app.state.engine.engine.loaded.model).installed() as passes:
        yield passes


async def test_a_message_over_the_token_limit_is_refused_naming_the_setting(
    server: LiveServer,
) -> None:
    ws, ready = await open_chat(server, server.login())
    await ws.send(chat_frame(LONGEST + "\U00020000"))
    error = await recv(ws)
    assert (error["type"], error["code"]) == ("error", "too_long")
    assert error["message"] == (
        f"your message is {LIMIT + 4} tokens; the limit is {LIMIT} tokens "
        "(WXGPT_MAX_MESSAGE_TOKENS)"
    )
    # Nothing was charged: the longest allowed message goes through on the same quota.
    await ws.send(chat_frame(LONGEST))
    done = (await recv_until(ws, "done", "error"))[-1]
    assert done["type"] == "done"
    assert done["quota"] == ready["quota"] - 1
    await ws.close()


async def ask(server: LiveServer, content: str) -> list[dict]:
    ws, _ = await open_chat(server, server.login())
    await ws.send(chat_frame(content))
    frames = await recv_until(ws, "done", "error")
    await ws.close()
    return frames


async def test_the_longest_message_does_not_stall_another_users_stream(
    server: LiveServer, passes: ForwardPasses
) -> None:
    alone = await ask(server, "hello there")
    start = len(passes.seen)
    passes.hold(1)
    chatting = asyncio.create_task(ask(server, "hello there"))
    await passes.held()  # its prompt is in, its first step waits
    ws, _ = await open_chat(server, server.login())
    await ws.send(chat_frame(LONGEST))
    await recv_until(ws, "start")  # the long reply is handed to the engine
    first_chunk = await passes.step_until(lambda seen: not seen.is_step, start + 1)
    passes.open()
    long_frames = await recv_until(ws, "done", "error")
    await ws.close()
    frames = await chatting

    chunks = [p for p in passes.seen[first_chunk.index :] if not p.is_step]
    prompt_tokens = long_frames[-1]["usage"]["prompt_tokens"]
    assert prompt_tokens >= LIMIT
    assert sum(p.tokens for p in chunks) == prompt_tokens
    assert all(p.tokens <= CHUNK for p in chunks)
    # After each chunk, while the other user's reply went on, it took its step at its own
    # short width (it gets as long as a chunk took, so it may end before the prompt is in).
    its_steps = [p for p in passes.seen[first_chunk.index :] if p.is_step and p.width < CHUNK]
    after = [passes.seen[p.index + 1] for p in chunks if p.index < its_steps[-1].index]
    assert after and all(p.is_step and p.width < CHUNK for p in after)
    text = "".join(f["text"] for f in frames if f["type"] == "delta")
    assert text == "".join(f["text"] for f in alone if f["type"] == "delta")
    assert frames[-1]["finish_reason"] == "length"
    assert long_frames[-1]["type"] == "done"

"""Chats over /ws/chat on llama.cpp's real `llama-server` (built by `make llama-server`),
through the remote engine, with the tokenizer read from the GGUF the server serves. Skipped,
saying how to build it, where the binary is absent: building takes minutes."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from generation.engines.openai_api import pick_model
from tests.live_server import LiveServer, chat_frame, open_chat, recv, recv_until
from tests.llama_server import BUILD_HINT, LlamaServer, bundled_gguf, decoded, llama_server_binary
from tests.server.chat.test_remote_engine import text_of, wait_until
from tests.server.chat.test_socket import stored_messages
from tests.server.conftest import ServerFactory

BINARY = llama_server_binary()
pytestmark = [
    pytest.mark.skipif(BINARY is None, reason=BUILD_HINT),
    # Each test starts a server that reads its tokenizer out of the GGUF first.
    pytest.mark.timeout(600),
]

# One slot of the GGUF's whole context, so that a 4000-token reply fits in it.
CONTEXT = 8192
LONG = 4000
# Reading the tokenizer out of the GGUF takes a while on a loaded machine.
READY_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """SmolLM2's GGUF on one slot; --ignore-eos keeps a reply going until it is stopped."""
    assert BINARY is not None
    log = tmp_path_factory.mktemp("llama") / "llama-server.log"
    server = LlamaServer(
        BINARY, bundled_gguf("smollm2"), log, context=CONTEXT, extra=["--ignore-eos"]
    ).start()
    yield server
    server.stop()


def start_wxgpt(start_server: ServerFactory, llama: LlamaServer, **overrides: Any) -> LiveServer:
    return start_server(
        inference_url=llama.url,
        model=llama.gguf,
        ready_timeout=READY_TIMEOUT,
        **overrides,
    )


def direct_chat(llama: LlamaServer, content: str, max_tokens: int) -> tuple[str, dict[str, int]]:
    """llama-server's own greedy answer to the same message, and its usage."""
    body = {
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    answer = httpx.post(llama.url + "/chat/completions", json=body, timeout=120).json()
    return answer["choices"][0]["message"]["content"], answer["usage"]


async def generating_slot(llama: LlamaServer) -> dict[str, Any]:
    """The slot working on a reply, once it has decoded a token."""
    found: list[dict[str, Any]] = []

    def busy() -> bool:
        found[:] = [s for s in llama.slots() if s["is_processing"] and decoded(s) > 0]
        return bool(found)

    await wait_until(busy)
    return found[0]


def predicted(llama: LlamaServer) -> float:
    """llama-server's count of tokens generated so far; a task's tokens are added when its
    slot lets go of it, however it ended (finished, or cancelled when its client left)."""
    return llama.metrics()["tokens_predicted_total"]


async def generated_until_released(
    llama: LlamaServer, working: dict[str, Any], before: float
) -> float:
    """Once the slot has let go of the task it was working on: the tokens that task
    generated in all, by llama-server's own count."""
    slot: dict[str, Any] = {}

    def done() -> bool:
        slot.update(llama.slots()[working["id"]])
        return not slot["is_processing"]

    await wait_until(done)
    assert slot["id_task"] == working["id_task"], "the same task, not a later one"
    assert slot["params"]["n_predict"] == LONG, "it was asked for the whole long reply"
    assert llama.metrics()["requests_processing"] == 0
    return predicted(llama) - before


def test_the_context_is_what_one_slot_holds(llama: LlamaServer) -> None:
    served = pick_model(httpx.get(llama.url + "/models", timeout=30).json(), None)
    assert served.owned_by == "llamacpp"
    assert served.max_model_len == llama.slots()[0]["n_ctx"] == CONTEXT


async def test_a_chat_streams_what_llama_server_generates(
    start_server: ServerFactory, llama: LlamaServer
) -> None:
    server = start_wxgpt(start_server, llama, chat={"repetition_penalty": 1.0})
    ready = httpx.get(server.url + "/readyz", timeout=30).json()
    assert (ready["status"], ready["engine"]) == ("ready", "remote")
    token = server.login()
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("the cat sat on the mat"))
    frames = await recv_until(ws, "done")
    await ws.close()
    text, usage = direct_chat(llama, "the cat sat on the mat", 12)
    assert text_of(frames) == text
    assert frames[-1]["finish_reason"] == "length"
    # The tokenizer read from the GGUF counts the prompt as llama-server does.
    assert frames[-1]["usage"] == {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": 12,
    }


async def test_stop_ends_the_generation_in_llama_server(
    start_server: ServerFactory, llama: LlamaServer
) -> None:
    server = start_wxgpt(start_server, llama, chat={"max_new_tokens": LONG})
    token = server.login()
    ws, _ = await open_chat(server, token)
    before = predicted(llama)
    await ws.send(chat_frame("tell me a long story"))
    frames = await recv_until(ws, "delta")
    working = await generating_slot(llama)
    await ws.send(json.dumps({"type": "stop"}))
    frames += await recv_until(ws, "done")
    await ws.close()
    assert frames[-1]["finish_reason"] == "cancelled"
    # llama-server's own count: the task ended long before its 4000 tokens (run on, it
    # would have generated them all: --ignore-eos).
    generated = await generated_until_released(llama, working, before)
    assert 0 < generated < LONG
    reply = stored_messages(server, token, frames[0]["conversation_id"])[-1]
    assert (reply["status"], reply["content"]) == ("stopped", text_of(frames))


async def test_a_reply_nobody_resumes_ends_in_llama_server(
    start_server: ServerFactory, llama: LlamaServer
) -> None:
    server = start_wxgpt(
        start_server, llama, resume_grace_seconds=0.2, chat={"max_new_tokens": LONG}
    )
    token = server.login()
    ws, _ = await open_chat(server, token)
    before = predicted(llama)
    await ws.send(chat_frame("tell me a long story"))
    start = await recv(ws)
    await recv_until(ws, "delta")
    working = await generating_slot(llama)
    await ws.close()
    generated = await generated_until_released(llama, working, before)
    assert 0 < generated < LONG
    await wait_until(
        lambda: (
            stored_messages(server, token, start["conversation_id"])[-1]["status"] == "interrupted"
        )
    )

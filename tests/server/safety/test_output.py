"""Replies through the content checks: released in checked pieces, stopped at a risky one.

The model is a scripted stand-in behind the remote engine, so the reply's sentences are
known; WeChat is the loopback stand-in."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.safety.release import cut_piece
from server.safety.words import save_words
from storage.models import CaseKind, Message, MessageStatus, ModerationCase, Role
from tests.inference_engine import StandInEngine, chat_chunk
from tests.live_server import LiveServer, chat_frame, open_chat, recv_until
from tests.server.chat.test_socket import stored_messages
from tests.server.conftest import ServerFactory
from tests.wechat_api import WeChatApi

SENTENCES = [
    "The first sentence is fine.",
    " The second one is fine too.",
    " The third is forbidden here.",
    " The fourth never shows.",
]


def scripted(text_pieces: list[str]) -> StandInEngine:
    """A stand-in engine streaming the pieces a few characters at a time, as tokens come."""
    chunks = [
        chat_chunk(piece[start : start + 5])
        for piece in text_pieces
        for start in range(0, len(piece), 5)
    ]
    chunks += [chat_chunk(None, "stop"), chat_chunk(usage=(9, len(chunks)))]
    return StandInEngine(chunks=chunks).start()


@pytest.fixture
def wechat() -> Iterator[WeChatApi]:
    api = WeChatApi(risky=["forbidden"]).start()
    yield api
    api.stop()


def reply_of(server: LiveServer) -> Message:
    return server.call(Message.get(role=Role.ASSISTANT))


async def test_a_risky_third_sentence_shows_the_first_two_then_content_blocked(
    start_server: ServerFactory, chat_model: Path, wechat: WeChatApi
) -> None:
    engine = scripted(SENTENCES)
    try:
        server = start_server(
            inference_url=engine.url, model=chat_model, output_check_chars=60, **wechat.settings()
        )
        token = server.login()
        ws, _ = await open_chat(server, token)
        await ws.send(chat_frame("tell me"))
        frames = await recv_until(ws, "done", "error")
        shown = "".join(f["text"] for f in frames if f["type"] == "delta")
        assert shown == SENTENCES[0] + SENTENCES[1]
        assert frames[-1]["code"] == "content_blocked"
        assert "refunded (now 100)" in frames[-1]["message"]
        reply = reply_of(server)
        assert (reply.status, reply.finish_reason, reply.content) == (
            MessageStatus.BLOCKED,
            "blocked",
            shown,
        )
        [case] = server.call(ModerationCase.all())
        assert (case.kind, case.message_id, case.content, case.verdict) == (
            CaseKind.OUTPUT,
            reply.id,
            SENTENCES[2],
            "risky",
        )
        assert server.get("/api/me", token).json()["quota"] == 100
        history = stored_messages(server, token, frames[0]["conversation_id"])
        assert [(m["status"], m["content"]) for m in history] == [
            ("complete", "tell me"),
            ("blocked", ""),
        ]
        # Asked for again (resume after a reconnect), it is still refused, never replayed.
        await ws.send(f'{{"type":"resume","message_id":{reply.id},"offset":0}}')
        again = await recv_until(ws, "done", "error")
        assert [f["type"] for f in again] == ["error"]
        assert again[0]["code"] == "content_blocked"
        await ws.close()
    finally:
        engine.stop()


async def test_a_listed_word_split_across_two_pieces_is_caught(
    start_server: ServerFactory, chat_model: Path
) -> None:
    engine = scripted(["aaaaaaa sp", "am bbbbbbbbbbbb"])
    try:
        server = start_server(inference_url=engine.url, model=chat_model, output_check_chars=10)
        server.call(save_words(["spam"]))
        token = server.login()
        ws, _ = await open_chat(server, token)
        await ws.send(chat_frame("hi"))
        frames = await recv_until(ws, "done", "error")
        await ws.close()
        assert "".join(f["text"] for f in frames if f["type"] == "delta") == "aaaaaaa sp"
        assert frames[-1]["code"] == "content_blocked"
        assert reply_of(server).status == MessageStatus.BLOCKED
    finally:
        engine.stop()


async def test_a_clean_reply_arrives_whole_in_pieces(
    start_server: ServerFactory, chat_model: Path, wechat: WeChatApi
) -> None:
    clean = [SENTENCES[0], SENTENCES[1], " And a tail without an end"]
    engine = scripted(clean)
    try:
        server = start_server(
            inference_url=engine.url, model=chat_model, output_check_chars=60, **wechat.settings()
        )
        token = server.login()
        ws, _ = await open_chat(server, token)
        await ws.send(chat_frame("tell me"))
        frames = await recv_until(ws, "done", "error")
        await ws.close()
        deltas = [f["text"] for f in frames if f["type"] == "delta"]
        assert deltas == clean
        assert frames[-1]["type"] == "done"
        assert reply_of(server).content == "".join(clean)
        assert [check["content"] for check in wechat.checks[1:]] == clean
    finally:
        engine.stop()


def test_pieces_end_at_sentence_ends_or_at_the_limit() -> None:
    assert cut_piece("Hello there. More", 60) == len("Hello there.")
    assert cut_piece("1. Two", 60) == 0
    assert cut_piece("你好，今天天气很好。明天", 60) == len("你好，今天天气很好。")
    assert cut_piece("x" * 70, 60) == 60
    assert cut_piece("x" * 59, 60) == 0

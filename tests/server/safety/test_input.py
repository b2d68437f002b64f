"""User messages through the content checks: the word list, and WeChat's msgSecCheck on a
stand-in that follows its documented shapes."""

from collections.abc import Iterator

import pytest

from server.safety.words import save_words
from storage.models import CaseKind, Message, ModerationCase, Role
from tests.live_server import LiveServer, chat_frame, open_chat, recv_until
from tests.server.conftest import ServerFactory
from tests.server.ops.test_metrics import scrape, value
from tests.wechat_api import WeChatApi


@pytest.fixture
def wechat() -> Iterator[WeChatApi]:
    api = WeChatApi(risky=["forbidden"], review=["borderline"]).start()
    yield api
    api.stop()


async def ask(server: LiveServer, token: str, content: str) -> list[dict]:
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame(content))
    frames = await recv_until(ws, "done", "error")
    await ws.close()
    return frames


def quota(server: LiveServer, token: str) -> int:
    value: int = server.get("/api/me", token).json()["quota"]
    return value


def cases(server: LiveServer) -> list[ModerationCase]:
    return server.call(ModerationCase.all().order_by("id"))


def user_messages(server: LiveServer) -> list[str]:
    return server.call(Message.filter(role=Role.USER).values_list("content", flat=True))


async def test_a_listed_word_however_written_is_refused_uncharged_and_filed(
    server: LiveServer,
) -> None:
    server.call(save_words(["bad word"]))
    token, user_id = server.login_user("alice")
    for dodge in ("say B a D w-o-r-d now", "ＢＡＤ ＷＯＲＤ", "BaDwOrD"):
        frames = await ask(server, token, dodge)
        assert [f["type"] for f in frames] == ["error"]
        assert frames[0]["code"] == "content_blocked"
        assert "nothing was charged" in frames[0]["message"]
    assert quota(server, token) == 100
    assert user_messages(server) == []
    filed = cases(server)
    assert [(c.kind, c.user_id, c.checker, c.verdict, c.label) for c in filed] == [
        (CaseKind.INPUT, user_id, "words", "risky", "bad word")
    ] * 3
    assert filed[1].content == "ＢＡＤ ＷＯＲＤ"
    samples = scrape(server)
    assert value(samples, "wxgpt_content_checks_total", checker="words", verdict="risky") == 3
    frames = await ask(server, token, "a good question")
    assert frames[-1]["type"] == "done"
    assert frames[-1]["quota"] == 99


async def test_wechat_flags_a_message_it_is_refused_and_not_charged(
    start_server: ServerFactory, wechat: WeChatApi
) -> None:
    server = start_server(**wechat.settings())
    token = server.login("bob")
    frames = await ask(server, token, "something forbidden")
    assert frames[-1]["code"] == "content_blocked"
    assert quota(server, token) == 100
    assert user_messages(server) == []
    assert wechat.checks[-1] == {
        "content": "something forbidden",
        "version": 2,
        "scene": 2,
        "openid": "dev:bob",
    }
    [case] = cases(server)
    assert (case.checker, case.verdict, case.label) == ("wechat", "risky", "20001")


async def test_the_word_list_answers_before_wechat_is_asked(
    start_server: ServerFactory, wechat: WeChatApi
) -> None:
    server = start_server(**wechat.settings())
    server.call(save_words(["spam"]))
    token = server.login()
    frames = await ask(server, token, "S P A M")
    assert frames[-1]["code"] == "content_blocked"
    assert wechat.checks == []


async def test_one_token_serves_many_checks_and_is_refreshed_after_40001(
    start_server: ServerFactory, wechat: WeChatApi
) -> None:
    server = start_server(**wechat.settings())
    token = server.login()
    ws, _ = await open_chat(server, token)
    for n in range(3):
        await ws.send(chat_frame(f"question {n}"))
        assert (await recv_until(ws, "done"))[-1]["type"] == "done"
    # The questions and the pieces of their replies, all on one token.
    asked = [check["content"] for check in wechat.checks]
    assert [text for text in asked if text.startswith("question")] == [
        f"question {n}" for n in range(3)
    ]
    assert len(asked) > 3
    assert len(wechat.tokens_issued) == 1
    wechat.expire_tokens()
    before = len(wechat.checks)
    await ws.send(chat_frame("after the token expired"))
    assert (await recv_until(ws, "done"))[-1]["type"] == "done"
    assert len(wechat.tokens_issued) == 2
    assert wechat.checks[before]["content"] == "after the token expired"
    await ws.close()


async def test_review_lets_the_message_through_and_files_it_with_its_message(
    start_server: ServerFactory, wechat: WeChatApi
) -> None:
    server = start_server(**wechat.settings())
    token = server.login()
    frames = await ask(server, token, "a borderline question")
    assert frames[-1]["type"] == "done"
    [case] = cases(server)
    question = server.call(Message.get(role=Role.USER))
    assert (case.verdict, case.message_id, case.conversation_id) == (
        "review",
        question.id,
        frames[0]["conversation_id"],
    )


async def test_wechat_not_answering_refuses_when_the_mode_is_closed(
    start_server: ServerFactory, wechat: WeChatApi
) -> None:
    wechat.stall = True
    server = start_server(**wechat.settings(content_check_timeout=0.2))
    token = server.login()
    frames = await ask(server, token, "hello")
    assert frames[-1]["code"] == "busy"
    assert "content check" in frames[-1]["message"]
    assert quota(server, token) == 100
    assert user_messages(server) == []
    samples = scrape(server)
    assert value(samples, "wxgpt_content_checks_total", checker="wechat", verdict="unavailable")
    assert value(samples, "wxgpt_content_checks_total", checker="words", verdict="pass") == 1


async def test_wechat_not_answering_lets_through_for_review_when_the_mode_is_open(
    start_server: ServerFactory, wechat: WeChatApi
) -> None:
    wechat.stall = True
    server = start_server(
        **wechat.settings(content_check_timeout=0.2, content_check_failure="open")
    )
    token = server.login()
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("hello"))
    frames = await recv_until(ws, "done", "error")
    await ws.close()
    assert frames[-1]["type"] == "done"
    filed = cases(server)
    assert (filed[0].kind, filed[0].verdict, filed[0].content) == (
        CaseKind.INPUT,
        "unchecked",
        "hello",
    )
    # The reply's pieces went unchecked too, and are filed with it.
    reply = "".join(f["text"] for f in frames if f["type"] == "delta")
    assert {(c.kind, c.verdict) for c in filed[1:]} == {(CaseKind.OUTPUT, "unchecked")}
    assert "".join(c.content for c in filed[1:]) == reply
    assert user_messages(server) == ["hello"]

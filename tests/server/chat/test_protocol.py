import pytest

from server.chat.protocol import (
    ChatFrame,
    FrameError,
    PingFrame,
    ResumeFrame,
    StopFrame,
    parse_frame,
)


def parse(text: str):
    return parse_frame(text, max_bytes=16 * 1024, max_chars=10)


def test_parses_each_client_frame() -> None:
    chat = parse('{"type": "chat", "conversation_id": 3, "content": "hi", "client_msg_id": "u1"}')
    assert chat == ChatFrame(type="chat", conversation_id=3, content="hi", client_msg_id="u1")
    assert parse('{"type": "chat", "content": "hi", "client_msg_id": "u1"}').conversation_id is None
    assert isinstance(parse('{"type": "stop"}'), StopFrame)
    assert isinstance(parse('{"type": "ping", "extra": 1}'), PingFrame)
    resume = parse('{"type": "resume", "message_id": 7, "offset": 0}')
    assert resume == ResumeFrame(type="resume", message_id=7, offset=0)


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        (
            '{"type": "chat", "content": "0123456789x", "client_msg_id": "u"}',
            "too_long",
            "11 characters",
        ),
        ('{"type": "chat", "content": "\\n\\t ", "client_msg_id": "u"}', "empty", "empty"),
        ('{"type": "chat", "content": "hi", "client_msg_id": ""}', "bad_request", "client_msg_id"),
        ('{"type": "chat", "content": 5, "client_msg_id": "u"}', "bad_request", "content"),
        (
            '{"type": "chat", "content": "hi", "client_msg_id": "u", "conversation_id": 0}',
            "bad_request",
            "greater",
        ),
        ('{"type": "resume", "message_id": 1}', "bad_request", "offset"),
        (
            '{"type": "resume", "message_id": 1, "offset": -1}',
            "bad_request",
            "offset: Input should be greater than or equal to 0",
        ),
        ('{"type": "resume", "message_id": 0, "offset": 0}', "bad_request", "message_id"),
        ('{"type": "dance"}', "bad_request", "expected one of chat, stop, ping, resume"),
        ('{"content": "hi"}', "bad_request", "unknown frame type None"),
        ("null", "bad_request", "JSON object"),
        ('{"type": "resume", "message_id": true, "offset": 0}', "bad_request", "message_id"),
        ('{"type": "resume", "message_id": "7", "offset": 0}', "bad_request", "message_id"),
        (
            '{"type": "resume", "message_id": 9223372036854775808, "offset": 0}',
            "bad_request",
            "message_id: Input should be less than or equal to 2147483647",
        ),
        (
            '{"type": "chat", "content": "a\\ud800", "client_msg_id": "u"}',
            "bad_request",
            "content: contains a lone surrogate",
        ),
        (
            '{"type": "chat", "content": "a\\u0000", "client_msg_id": "u"}',
            "bad_request",
            "content: contains a NUL character",
        ),
        ('{"type": "ping", "x": ' + "[" * 40 + "]" * 40 + "}", "bad_request", "deeper than 32"),
        ('{"type": "ping", "x": ' + "[" * 5000 + "]" * 5000 + "}", "bad_request", "deeper"),
        ('{"type": "ping", "x": NaN}', "bad_request", "NaN is not a JSON number"),
        ("x" * 20_000, "too_long", "limit is 16384 bytes"),
    ],
)
def test_refusals_name_the_problem(text: str, code: str, words: str) -> None:
    with pytest.raises(FrameError) as refused:
        parse(text)
    assert refused.value.code == code
    assert words in refused.value.message

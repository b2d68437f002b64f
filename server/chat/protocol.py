"""The /ws/chat wire protocol: client frames parsed and checked, server frames built."""

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from server.validation import Id, InputError, StrictModel, describe, parse_json

ErrorCode = Literal[
    "bad_request",
    "empty",
    "too_long",
    "quota_exhausted",
    "busy",
    "not_found",
    "content_blocked",
    "internal",
]


class FrameError(Exception):
    """A client frame that cannot be served; answered with an `error` frame, socket kept."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Frame(StrictModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ChatFrame(_Frame):
    type: Literal["chat"]
    conversation_id: Id | None = None
    content: str
    client_msg_id: str = Field(min_length=1, max_length=64)


class StopFrame(_Frame):
    type: Literal["stop"]


class PingFrame(_Frame):
    type: Literal["ping"]


class ResumeFrame(_Frame):
    type: Literal["resume"]
    message_id: Id
    offset: int = Field(ge=0)


ClientFrame = ChatFrame | StopFrame | PingFrame | ResumeFrame
_frames: TypeAdapter[ClientFrame] = TypeAdapter(Annotated[ClientFrame, Field(discriminator="type")])
FRAME_TYPES = ("chat", "stop", "ping", "resume")


def parse_frame(text: str, *, max_bytes: int, max_chars: int) -> ClientFrame:
    """Parse one text frame; raises FrameError naming what is wrong and any limit."""
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise FrameError("too_long", f"frame is {size} bytes; the limit is {max_bytes} bytes")
    try:
        data = parse_json(text)
    except InputError as exc:
        raise FrameError("bad_request", f"frame: {exc}") from None
    if not isinstance(data, dict):
        raise FrameError("bad_request", 'frame must be a JSON object with a "type"')
    kind = data.get("type")
    if kind not in FRAME_TYPES:
        raise FrameError(
            "bad_request", f"unknown frame type {kind!r}; expected one of {', '.join(FRAME_TYPES)}"
        )
    try:
        frame = _frames.validate_python(data)
    except ValidationError as exc:
        raise FrameError("bad_request", describe(exc)) from None
    if isinstance(frame, ChatFrame):
        _check_content(frame.content, max_chars)
    return frame


def _check_content(content: str, max_chars: int) -> None:
    if not content.strip():
        raise FrameError("empty", "message is empty")
    if len(content) > max_chars:
        raise FrameError(
            "too_long", f"message is {len(content)} characters; the limit is {max_chars} characters"
        )


def error(code: ErrorCode, message: str) -> dict[str, Any]:
    """An `error` frame."""
    return {"type": "error", "code": code, "message": message}


def ready(user: dict[str, Any], quota: int, free: int) -> dict[str, Any]:
    """Sent once when the socket opens: the bought quota and today's free replies left."""
    return {"type": "ready", "user": user, "quota": quota, "free": free}


def queued(position: int) -> dict[str, Any]:
    """The reply waits for a generation slot at this place in line."""
    return {"type": "queued", "position": position}


def start(conversation_id: int, message_id: int) -> dict[str, Any]:
    """The reply begins."""
    return {"type": "start", "conversation_id": conversation_id, "message_id": message_id}


def delta(text: str) -> dict[str, Any]:
    """The next piece of the reply."""
    return {"type": "delta", "text": text}


def done(
    message_id: int,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    quota: int,
    free: int,
) -> dict[str, Any]:
    """The reply finished and is stored; the quota and free replies left after it."""
    return {
        "type": "done",
        "message_id": message_id,
        "finish_reason": finish_reason,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        "quota": quota,
        "free": free,
    }


PONG: dict[str, Any] = {"type": "pong"}

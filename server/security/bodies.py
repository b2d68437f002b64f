"""What a request body may be: JSON (the only type wxgpt's endpoints read, but for the few
upload paths named with their own types and limit), and no larger than WXGPT_MAX_BODY_BYTES.
Checked as the body streams in, so an oversized one is refused after at most the limit has
been read, never held whole."""

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import ApiError, error_response

JSON_TYPE = "application/json"
# A refused body is not read on: the connection closes after the answer, so the client stops
# sending instead of the server draining the rest.
CLOSE = {"Connection": "close"}


class BodyTooLarge(ApiError):
    """The body outgrew the limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, "too_long", f"the request body is over the limit of {limit} bytes", headers=CLOSE
        )


def is_json(content_type: str) -> bool:
    """application/json, or a structured type such as application/problem+json."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON_TYPE or (media.startswith("application/") and media.endswith("+json"))


@dataclass(frozen=True)
class Upload:
    """A path that takes a raw upload instead of JSON: its media types and its size limit."""

    types: frozenset[str]
    limit: int


class BodyGuard:
    """415 for a body that is not JSON, 413 for one over `limit` bytes: at once when its
    Content-Length says so, else as soon as the bytes read pass the limit. The paths in
    `uploads` take their own types and limit instead."""

    def __init__(
        self, app: ASGIApp, limit: int, uploads: Mapping[str, Upload] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.uploads = dict(uploads or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        declared = int(length) if length.isascii() and length.isdigit() else None
        has_body = declared != 0 and (declared is not None or "transfer-encoding" in headers)
        upload = self.uploads.get(scope["path"])
        limit = upload.limit if upload else self.limit
        content_type = headers.get("content-type", "")
        media = content_type.split(";", 1)[0].strip().lower()
        allowed = media in upload.types if upload else is_json(content_type)
        refusal: ApiError | None = None
        if has_body and not allowed:
            wanted = ", ".join(sorted(upload.types)) if upload else JSON_TYPE
            refusal = ApiError(
                415,
                "unsupported_media_type",
                f"send the body as {wanted} (got {content_type or 'none'})",
                headers=CLOSE,
            )
        elif declared is not None and declared > limit:
            refusal = BodyTooLarge(limit)
        if refusal is not None:
            response = error_response(
                refusal.status, refusal.code, refusal.message, refusal.headers
            )
            await response(scope, receive, send)
            return
        await self.app(scope, _counted(receive, limit), send)


def _counted(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return counted

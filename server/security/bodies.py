"""What a request body may be: JSON (the only type wxgpt's endpoints read), and no larger than
WXGPT_MAX_BODY_BYTES. Checked as the body streams in, so an oversized one is refused after at
most the limit has been read, never held whole."""

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


class BodyGuard:
    """415 for a body that is not JSON, 413 for one over `limit` bytes: at once when its
    Content-Length says so, else as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        declared = int(length) if length.isascii() and length.isdigit() else None
        has_body = declared != 0 and (declared is not None or "transfer-encoding" in headers)
        refusal: ApiError | None = None
        if has_body and not is_json(headers.get("content-type", "")):
            given = headers.get("content-type") or "none"
            refusal = ApiError(
                415,
                "unsupported_media_type",
                f"send the body as {JSON_TYPE} (got {given})",
                headers=CLOSE,
            )
        elif declared is not None and declared > self.limit:
            refusal = BodyTooLarge(self.limit)
        if refusal is not None:
            response = error_response(
                refusal.status, refusal.code, refusal.message, refusal.headers
            )
            await response(scope, receive, send)
            return
        await self.app(scope, self._counted(receive), send)

    def _counted(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        return counted

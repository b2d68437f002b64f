"""Which web origins may make changes and open sockets here: the server's own origin, the ones
configured in WXGPT_ALLOWED_ORIGINS, and WeChat's. Requests without an Origin header (the
mini-program's native requests, command-line clients) pass; browsers always send one on a
state-changing request and on every WebSocket upgrade, and a page cannot forge it."""

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import error_response

# What wx.request and wx.connectSocket send, when they send an Origin at all (the Referer they
# always send is https://servicewechat.com/{appid}/{version}/page-frame.html).
WECHAT_ORIGIN = "https://servicewechat.com"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_HTTP_SCHEME = {"ws": "http", "wss": "https"}


def normalize(origin: str) -> str:
    """`scheme://host[:port]` in lower case, without a trailing slash."""
    return origin.strip().rstrip("/").lower()


class Origins:
    """The allowed origins; the server's own is worked out per request from its Host header."""

    def __init__(self, configured: Iterable[str]) -> None:
        self.configured = frozenset(normalize(origin) for origin in configured if origin.strip())

    def refusal(self, scope: Scope) -> str | None:
        """Why this request's Origin is refused, or None when it is allowed or absent."""
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            return None
        origin = normalize(origin)
        scheme = _HTTP_SCHEME.get(scope["scheme"], scope["scheme"])
        own = normalize(f"{scheme}://{headers.get('host', '')}")
        if origin in self.configured or origin in (own, WECHAT_ORIGIN):
            return None
        return f"origin {origin} is not allowed here (see WXGPT_ALLOWED_ORIGINS)"


class OriginGuard:
    """Refuses state-changing HTTP requests from a page of another origin with 403."""

    def __init__(self, app: ASGIApp, origins: Origins) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            refusal = self.origins.refusal(scope)
            if refusal is not None:
                response = error_response(
                    403, "forbidden", f"cross-origin request refused: {refusal}"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

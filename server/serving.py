"""How uvicorn serves wxgpt: the same configuration for `wxgpt serve` and the tests' servers.

uvicorn has no timeout for a request that never finishes arriving: its keep-alive timer runs
only between requests and is reset by every byte, so a client trickling headers (or sending
none) holds a connection for ever. RequestDeadline gives each request WXGPT_REQUEST_TIMEOUT
seconds to arrive whole, headers and body, a WebSocket upgrade included; the time a response
takes is not counted."""

import asyncio
import logging
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.config import Settings

logger = logging.getLogger(__name__)


class RequestDeadline(HttpToolsProtocol):
    """uvicorn's httptools protocol, dropping connections whose request is not in by the
    deadline (counted from the connection's start, or from the previous response's end)."""

    timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            logger.info("dropped %s: no whole request within %.0f s", client, self.timeout_s)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        # The upgrade request is in; from here the WebSocket protocol owns the connection.
        self._disarm()
        super().handle_websocket_upgrade()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        # A pipelined request that has fully arrived is being answered now: no deadline.
        if not self.transport.is_closing() and (not pipelined or self.cycle.more_body):
            self._arm()


def uvicorn_config(app: ASGIApp, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's configuration for `app`; `overrides` are uvicorn.Config options."""
    protocol = type("RequestDeadline", (RequestDeadline,), {"timeout_s": settings.request_timeout})
    trusted = settings.trusted_proxies
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": protocol,
        # The frame limit is enforced by wxgpt with a readable error; uvicorn's own limit only
        # guards against absurd frames, so it sits well above ours.
        "ws_max_size": max(1 << 20, settings.max_frame_bytes * 4),
        # X-Forwarded-For and -Proto only from the configured proxies: else any client could
        # pick the address that the per-address limits count.
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "log_config": None,
        **overrides,
    }
    return uvicorn.Config(app, **options)

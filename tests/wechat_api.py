"""A stand-in for WeChat's server API on loopback: `/cgi-bin/stable_token` and
`/wxa/msg_sec_check` (version 2) with the documented request and answer shapes.

Text holding one of `risky` (or `review`) is answered with that suggest and label 20001;
other text passes. Tokens expire when the test says so (`expire_tokens`: the next check
gets errcode 40001), and `stall` holds every check unanswered until the client gives up.
"""

import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.loopback_app import LoopbackApp
from tests.server.test_cli import free_port

APPID = "wx-test-app"
SECRET = "wx-test-secret"
LABEL = 20001


@dataclass
class WeChatApi:
    risky: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)
    stall: bool = False
    expires_in: int = 7200
    tokens_issued: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __post_init__(self) -> None:
        self._valid: set[str] = set()
        app = Starlette(
            routes=[
                Route("/cgi-bin/stable_token", self._stable_token, methods=["POST"]),
                Route("/wxa/msg_sec_check", self._msg_sec_check, methods=["POST"]),
            ]
        )
        self._served = LoopbackApp(app, self.port)

    def start(self) -> "WeChatApi":
        self._served.start()
        return self

    def stop(self) -> None:
        self._served.stop()

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (errcode 40001)."""
        self._valid.clear()

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """wxgpt settings that check text with this stand-in."""
        return {
            "wechat_appid": APPID,
            "wechat_secret": SECRET,
            "wechat_api_base": self.url,
            **overrides,
        }

    async def _stable_token(self, request: Request) -> Response:
        body = await request.json()
        if body.get("grant_type") != "client_credential" or body.get("appid") != APPID:
            return JSONResponse({"errcode": 40013, "errmsg": "invalid appid"})
        if body.get("secret") != SECRET:
            return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
        token = secrets.token_hex(16)
        self._valid.add(token)
        self.tokens_issued.append(token)
        return JSONResponse({"access_token": token, "expires_in": self.expires_in})

    async def _msg_sec_check(self, request: Request) -> Response:
        if request.query_params.get("access_token") not in self._valid:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        body = await request.json()
        self.checks.append(body)
        if self.stall:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            return Response(status_code=504)
        missing = [key for key in ("content", "version", "scene", "openid") if key not in body]
        if missing or body["version"] != 2 or body["scene"] not in (1, 2, 3, 4):
            return JSONResponse({"errcode": 47001, "errmsg": f"data format error {missing}"})
        content = str(body["content"])
        suggest, label = "pass", 100
        if any(word in content for word in self.review):
            suggest, label = "review", LABEL
        if any(word in content for word in self.risky):
            suggest, label = "risky", LABEL
        return JSONResponse(
            {
                "errcode": 0,
                "errmsg": "ok",
                "result": {"suggest": suggest, "label": label},
                "detail": [{"strategy": "content_model", "errcode": 0, "suggest": suggest}],
                "trace_id": secrets.token_hex(8),
            }
        )

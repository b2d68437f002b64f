"""WeChat's text check (`msgSecCheck` version 2) and the access token it needs.

The token comes from `/cgi-bin/stable_token` and is kept in the coordination store until
shortly before it expires, so replicas share one token; a check answered 40001 or 42001
(token invalid or expired) fetches a fresh one and is tried once more. WeChat allows an app
`CALLS_PER_MINUTE` checks a minute; the calls are counted in the same shared store, and a
check over the limit is not sent but fails like an unanswered one.
"""

import logging
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import httpx

from server.coordination.base import Coordinator

logger = logging.getLogger(__name__)

CALLS_PER_MINUTE = 4000
MAX_CONTENT_CHARS = 2500
# A token is dropped this long before WeChat says it expires, so none is used past its end.
TOKEN_MARGIN_S = 300
_TOKEN_KEY = "wechat:access_token"
_STALE_TOKEN = frozenset({40001, 42001})


class Scene(IntEnum):
    """msgSecCheck's scene: what kind of text is checked."""

    PROFILE = 1
    COMMENT = 2


class WeChatUnavailable(Exception):
    """WeChat did not give a verdict: no answer in time, an error, or over the call limit."""


@dataclass(frozen=True)
class WeChatVerdict:
    """`result.suggest` (pass, review, risky) and `result.label` of one check."""

    suggest: str
    label: int


class WeChatChecker:
    """Checks text with msgSecCheck as the app `appid`."""

    def __init__(
        self,
        coordinator: Coordinator,
        *,
        api_base: str,
        appid: str,
        secret: str,
        timeout_s: float,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._coordinator = coordinator
        self._base = api_base.rstrip("/")
        self._appid = appid
        self._secret = secret
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def check(self, content: str, openid: str, scene: Scene) -> WeChatVerdict:
        """WeChat's verdict on `content` (its first 2500 characters); raises WeChatUnavailable."""
        body = {
            "content": content[:MAX_CONTENT_CHARS],
            "version": 2,
            "scene": int(scene),
            "openid": openid,
        }
        answer = await self._check(body, await self._token(refresh=False))
        if answer.get("errcode") in _STALE_TOKEN:
            logger.info("WeChat access token refused (%s); fetching a new one", answer["errcode"])
            answer = await self._check(body, await self._token(refresh=True))
        if answer.get("errcode", 0) != 0:
            raise WeChatUnavailable(
                f"msgSecCheck answered errcode {answer.get('errcode')}: {answer.get('errmsg')}"
            )
        result = answer.get("result")
        if not isinstance(result, dict) or result.get("suggest") not in ("pass", "review", "risky"):
            raise WeChatUnavailable(f"msgSecCheck answered without a verdict: {answer!r:.200}")
        label = result.get("label")
        return WeChatVerdict(str(result["suggest"]), label if isinstance(label, int) else 0)

    async def _check(self, body: dict[str, Any], token: str) -> dict[str, Any]:
        minute = int(time.time() // 60)
        calls = await self._coordinator.incr(f"wechat:calls:{minute}", ttl=120)
        if calls > CALLS_PER_MINUTE:
            raise WeChatUnavailable(f"over WeChat's {CALLS_PER_MINUTE} checks a minute")
        return await self._post("/wxa/msg_sec_check", body, params={"access_token": token})

    async def _token(self, *, refresh: bool) -> str:
        if not refresh:
            cached = await self._coordinator.get(_TOKEN_KEY)
            if cached:
                return cached
        answer = await self._post(
            "/cgi-bin/stable_token",
            {
                "grant_type": "client_credential",
                "appid": self._appid,
                "secret": self._secret,
                "force_refresh": refresh,
            },
        )
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise WeChatUnavailable(
                f"stable_token answered errcode {answer.get('errcode')}: {answer.get('errmsg')}"
            )
        await self._coordinator.set(_TOKEN_KEY, token, ttl=max(expires_in - TOKEN_MARGIN_S, 1))
        return token

    async def _post(
        self, path: str, body: dict[str, Any], params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            response = await self._client.post(self._base + path, json=body, params=params)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WeChatUnavailable(f"{path} failed: {type(exc).__name__} {exc}") from None
        if not isinstance(answer, dict):
            raise WeChatUnavailable(f"{path} answered something other than a JSON object")
        return answer

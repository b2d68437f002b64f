"""WeChat login: exchange a `wx.login` code for the user's openid (code2Session)."""

import logging

import httpx

logger = logging.getLogger(__name__)


class WeChatLoginError(Exception):
    """code2Session refused the code or could not be reached."""


async def code_to_openid(url: str, appid: str, secret: str, code: str) -> str:
    """Call code2Session and return the openid; raises WeChatLoginError."""
    params = {"appid": appid, "secret": secret, "js_code": code, "grant_type": "authorization_code"}
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(url, params=params)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        logger.warning("code2Session at %s failed: %s", url, exc)
        raise WeChatLoginError("WeChat login service could not be reached; try again") from exc
    if not isinstance(body, dict):
        raise WeChatLoginError("WeChat login service answered something unexpected")
    if body.get("errcode"):
        logger.info("code2Session refused a code: %s %s", body.get("errcode"), body.get("errmsg"))
        raise WeChatLoginError(
            f"WeChat refused the login code ({body.get('errcode')}: {body.get('errmsg')})"
        )
    openid = body.get("openid")
    if not isinstance(openid, str) or not openid:
        raise WeChatLoginError("WeChat login service returned no openid")
    return openid

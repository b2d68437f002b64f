"""The mini-program's account endpoints: login (WeChat or development) and the profile."""

from pydantic import Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.accounts.tokens import TokenCodec, authenticate, authenticate_claim
from server.accounts.wechat import WeChatLoginError, code_to_openid
from server.chat.settings import starting_quota
from server.config import Settings
from server.errors import ApiError
from server.security.tickets import Grant, TicketBook
from server.validation import StrictModel, read_body
from server.views import user_view
from storage.users import get_or_create_user, touch_last_seen


class LoginBody(StrictModel):
    code: str | None = Field(None, min_length=1, max_length=256)
    wid: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    nickname: str = Field("", max_length=64)

    @model_validator(mode="after")
    def _one_of(self) -> "LoginBody":
        if (self.code is None) == (self.wid is None):
            raise ValueError('send either "code" (from wx.login) or "wid" (development login)')
        return self


async def login(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    body = await read_body(request, LoginBody)
    if body.wid is not None:
        if not settings.dev_login:
            raise ApiError(
                403, "forbidden", "development login is off; log in with a wx.login code"
            )
        openid = f"dev:{body.wid}"
    else:
        if not (settings.wechat_appid and settings.wechat_secret):
            raise ApiError(503, "unavailable", "WeChat login is not configured on this server")
        try:
            openid = await code_to_openid(
                settings.wechat_code2session_url,
                settings.wechat_appid,
                settings.wechat_secret,
                body.code or "",
            )
        except WeChatLoginError as exc:
            raise ApiError(401, "unauthorized", str(exc)) from None
    user, _ = await get_or_create_user(
        openid, default_quota=await starting_quota(settings), nickname=body.nickname
    )
    if user.banned:
        raise ApiError(403, "banned", "this account is banned")
    await touch_last_seen(user.id)
    tokens: TokenCodec = request.app.state.tokens
    return JSONResponse(
        {"token": tokens.issue(user.id), "expires_in": tokens.ttl_seconds, "user": user_view(user)}
    )


async def me(request: Request) -> Response:
    user = await authenticate(request)
    return JSONResponse({"user": user_view(user), "quota": user.quota})


async def ws_ticket(request: Request) -> Response:
    """A single-use ticket that opens /ws/chat as the token's user: `?ticket=…`."""
    user, claim = await authenticate_claim(request)
    return await issue_ticket(request, Grant("chat", str(user.id), claim.expires_at))


async def issue_ticket(request: Request, grant: Grant) -> JSONResponse:
    """The answer to a ticket request: the ticket and how many seconds it stays valid."""
    tickets: TicketBook = request.app.state.tickets
    ticket = await tickets.issue(grant)
    return JSONResponse({"ticket": ticket, "expires_in": int(tickets.ttl_s)})


routes = [
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/me", me, methods=["GET"]),
    Route("/api/ws-ticket", ws_ticket, methods=["POST"]),
]

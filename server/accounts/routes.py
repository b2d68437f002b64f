"""The mini-program's account endpoints: login (WeChat or development, with an invite code)
and the profile."""

import logging
from datetime import datetime, time
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.accounts.tokens import TokenCodec, authenticate, authenticate_claim
from server.accounts.wechat import WeChatLoginError, code_to_openid
from server.chat.settings import load_chat_settings, starting_quota
from server.config import Settings
from server.errors import ApiError
from server.security.tickets import Grant, TicketBook
from server.validation import StrictModel, read_body
from server.views import user_view
from storage.invitations import invite_code_of, reward_invitation
from storage.users import get_or_create_user, touch_last_seen

logger = logging.getLogger(__name__)


class LoginBody(StrictModel):
    code: str | None = Field(None, min_length=1, max_length=256)
    wid: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    nickname: str = Field("", max_length=64)
    # The invite code of the share card the user came from; counts only for a new user.
    invite: str | None = Field(None, min_length=4, max_length=16, pattern=r"^[A-Za-z0-9]+$")

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
    user, created = await get_or_create_user(
        openid, default_quota=await starting_quota(settings), nickname=body.nickname
    )
    if user.banned:
        raise ApiError(403, "banned", "this account is banned")
    invited = 0
    if created and body.invite is not None:
        invited = await _reward_invitation(request, user.id, body.invite)
        await user.refresh_from_db(fields=["quota"])
    await touch_last_seen(user.id)
    tokens: TokenCodec = request.app.state.tokens
    return JSONResponse(
        {
            "token": tokens.issue(user.id),
            "expires_in": tokens.ttl_seconds,
            "user": user_view(user),
            "invite_reward": invited,
        }
    )


async def _reward_invitation(request: Request, user_id: int, code: str) -> int:
    """The replies a new user got for coming with `code` (0 for an unknown code or when
    invitations reward nothing)."""
    settings: Settings = request.app.state.settings
    chat = await load_chat_settings()
    if not chat.invite_reward:
        return 0
    today = chat.free_day(settings, request.app.state.clock())
    day_start = datetime.combine(today.day, time(0), ZoneInfo(settings.timezone))
    invitation = await reward_invitation(
        user_id, code, chat.invite_reward, chat.invite_daily_cap, day_start
    )
    if invitation is None:
        logger.info("user %d came with an invite code that names no one else", user_id)
        return 0
    logger.info(
        "user %d invited by user %d: %d replies each (inviter: %d)",
        user_id,
        invitation.inviter_id,
        invitation.invitee_reward,
        invitation.inviter_reward,
    )
    return invitation.invitee_reward


async def me(request: Request) -> Response:
    """The profile, the bought quota and today's free replies left."""
    user = await authenticate(request)
    free = await request.app.state.replies.free_day()
    return JSONResponse(
        {
            "user": user_view(user),
            "quota": user.quota,
            "free": free.left(user),
            "invite_code": await invite_code_of(user.id),
        }
    )


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

"""The HTTP API of the mini-program: login, profile, and the user's own conversations."""

from pydantic import BaseModel, Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.auth import TokenCodec, authenticate
from server.chat_settings import starting_quota
from server.config import Settings
from server.errors import ApiError
from server.validation import query_int, read_body
from server.views import conversation_view, message_view, user_view
from server.wechat import WeChatLoginError, code_to_openid
from storage import conversations
from storage.errors import ConversationNotFound
from storage.users import get_or_create_user, touch_last_seen

MAX_PAGE = 100


class LoginBody(BaseModel):
    code: str | None = Field(None, min_length=1, max_length=256)
    wid: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    nickname: str = Field("", max_length=64)

    @model_validator(mode="after")
    def _one_of(self) -> "LoginBody":
        if (self.code is None) == (self.wid is None):
            raise ValueError('send either "code" (from wx.login) or "wid" (development login)')
        return self


class RenameBody(BaseModel):
    title: str = Field(min_length=1, max_length=100)


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


async def list_conversations(request: Request) -> Response:
    user = await authenticate(request)
    offset = query_int(request, "offset", 0, 0, 10**9) or 0
    limit = query_int(request, "limit", 20, 1, MAX_PAGE) or 20
    items, total = await conversations.list_conversations(user.id, offset=offset, limit=limit)
    next_offset = offset + len(items) if offset + len(items) < total else None
    return JSONResponse(
        {"items": [conversation_view(c) for c in items], "total": total, "next_offset": next_offset}
    )


async def list_messages(request: Request) -> Response:
    user = await authenticate(request)
    conversation_id = request.path_params["conversation_id"]
    before = query_int(request, "before", None, 1, 2**62)
    limit = query_int(request, "limit", 50, 1, MAX_PAGE) or 50
    try:
        items, has_more = await conversations.list_messages(
            user.id, conversation_id, before_id=before, limit=limit
        )
    except ConversationNotFound:
        raise _not_found(conversation_id) from None
    return JSONResponse({"items": [message_view(m) for m in items], "has_more": has_more})


async def conversation(request: Request) -> Response:
    user = await authenticate(request)
    conversation_id = request.path_params["conversation_id"]
    try:
        if request.method == "GET":
            found = await conversations.get_conversation(user.id, conversation_id)
            return JSONResponse(conversation_view(found))
        if request.method == "PATCH":
            body = await read_body(request, RenameBody)
            renamed = await conversations.rename_conversation(
                user.id, conversation_id, body.title.strip()
            )
            return JSONResponse(conversation_view(renamed))
        if request.app.state.replies.generating_in(conversation_id):
            raise ApiError(
                409, "busy", "a reply is being written in this conversation; stop it first"
            )
        await conversations.delete_conversation(user.id, conversation_id)
        return Response(status_code=204)
    except ConversationNotFound:
        raise _not_found(conversation_id) from None


def _not_found(conversation_id: int) -> ApiError:
    return ApiError(404, "not_found", f"conversation {conversation_id} not found")


routes = [
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/me", me, methods=["GET"]),
    Route("/api/conversations", list_conversations, methods=["GET"]),
    Route(
        "/api/conversations/{conversation_id:int}", conversation, methods=["GET", "PATCH", "DELETE"]
    ),
    Route("/api/conversations/{conversation_id:int}/messages", list_messages, methods=["GET"]),
]

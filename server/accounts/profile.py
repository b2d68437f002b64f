"""The user's own profile: the nickname (checked like a message, scene 1) and the avatar.

WeChat no longer hands a mini-program the user's nickname and avatar; the user picks them
(`<input type="nickname">`, `<button open-type="chooseAvatar">`) and the mini-program
saves them here. The avatar is stored in the database, so every replica serves it.
"""

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.accounts.tokens import authenticate
from server.errors import ApiError
from server.safety.checks import CheckUnavailable, ContentChecker
from server.safety.wechat import Scene
from server.security.bodies import Upload
from server.validation import StrictModel, path_id, read_body
from server.views import user_view
from storage import moderation
from storage.models import CaseKind
from storage.users import get_avatar, save_avatar, set_nickname

MAX_NICKNAME_CHARS = 32
AVATAR_MAX_BYTES = 512 * 1024
# What each accepted image type's file starts with: the body must be what it says it is.
AVATAR_MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/webp": (b"RIFF",),
}
AVATAR_UPLOAD = Upload(frozenset(AVATAR_MAGIC), AVATAR_MAX_BYTES)


class ProfileBody(StrictModel):
    nickname: str = Field(min_length=1, max_length=MAX_NICKNAME_CHARS)


async def update_profile(request: Request) -> Response:
    """Change the nickname, once WeChat's check (scene 1) and the word list let it through."""
    user = await authenticate(request)
    body = await read_body(request, ProfileBody)
    nickname = body.nickname.strip()
    if not nickname:
        raise ApiError(400, "bad_request", "nickname must not be blank")
    checker: ContentChecker = request.app.state.checker
    try:
        verdict = await checker.check(nickname, user.openid, Scene.PROFILE)
    except CheckUnavailable:
        raise ApiError(
            503, "unavailable", "the content check is not answering; try again soon"
        ) from None
    if verdict.blocked or verdict.for_review:
        await moderation.file_case(
            CaseKind.PROFILE,
            user.id,
            nickname,
            verdict=verdict.verdict,
            checker=verdict.checker,
            label=verdict.label,
        )
    if verdict.blocked:
        raise ApiError(422, "content_blocked", "this nickname breaks the content rules")
    updated = await set_nickname(user.id, nickname)
    return JSONResponse({"user": user_view(updated), "quota": updated.quota})


async def upload_avatar(request: Request) -> Response:
    """Store the body (a JPEG, PNG or WebP image of at most 512 KiB) as the user's avatar."""
    user = await authenticate(request)
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    data = await request.body()
    if not data:
        raise ApiError(400, "bad_request", "send the image as the request body")
    if not data.startswith(AVATAR_MAGIC[content_type]) or (
        content_type == "image/webp" and data[8:12] != b"WEBP"
    ):
        raise ApiError(400, "bad_request", f"the body is not a {content_type} image")
    updated = await save_avatar(user.id, content_type, data)
    return JSONResponse({"user": user_view(updated), "quota": updated.quota})


async def avatar(request: Request) -> Response:
    """A user's avatar image; its URL names the version, so it may be cached for good."""
    stored = await get_avatar(path_id(request, "user_id"))
    if stored is None:
        raise ApiError(404, "not_found", "this user has no avatar")
    return Response(
        bytes(stored.data),
        media_type=stored.content_type,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )


routes = [
    Route("/api/me", update_profile, methods=["PATCH"]),
    Route("/api/me/avatar", upload_avatar, methods=["POST"]),
    Route("/api/avatars/{user_id:int}", avatar, methods=["GET"]),
]

"""Admin console sessions: login with a password, a session cookie or bearer token, logout."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import Field
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.accounts.tokens import presented_token
from server.admin.csrf import HEADER as CSRF_HEADER
from server.admin.csrf import csrf_matches, csrf_token
from server.admin.login_limit import DEVICE_COOKIE, DEVICE_TTL_S, LoginLimiter, LoginLocked
from server.config import Settings
from server.errors import ApiError
from server.validation import StrictModel, read_body
from storage import admins, audit
from storage.errors import ConversationNotFound, UserNotFound
from storage.models import AdminRole

COOKIE = "wxgpt_admin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class AdminUser:
    """The admin behind a request, the session token they presented and when it expires."""

    id: int
    username: str
    role: AdminRole
    token: str
    expires_at: datetime

    @property
    def can_write(self) -> bool:
        """Whether this admin may change anything (the `ops` role only looks)."""
        return self.role == AdminRole.ADMIN


class LoginBody(StrictModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


Handler = Callable[[Request, "AdminUser"], Awaitable[Response]]


async def authenticate_admin(conn: HTTPConnection, *, write: bool) -> AdminUser:
    """The admin of a request or socket; raises ApiError 401 (no valid session) or 403 (the ops
    role asking to write, or a cookie-authenticated change without its CSRF token).

    Chat-user tokens never pass: sessions are random tokens looked up in admin_sessions.
    """
    bearer = presented_token(conn.headers)
    # A bearer header wins over the cookie: a page of another origin cannot set one.
    token = bearer or conn.cookies.get(COOKIE)
    if not token:
        raise ApiError(401, "unauthorized", "log in to the admin console first")
    admin = await session_user(token)
    if bearer is None and conn.scope["type"] == "http" and conn.scope["method"] not in SAFE_METHODS:
        settings: Settings = conn.app.state.settings
        if not csrf_matches(settings.secret_key, token, conn.headers.get(CSRF_HEADER)):
            raise ApiError(
                403,
                "csrf_failed",
                f"a change made with the session cookie needs the {CSRF_HEADER} header "
                "(csrf_token from /api/admin/me or the login answer)",
            )
    if write and not admin.can_write:
        raise ApiError(403, "forbidden", "the ops role is read-only; an admin must do this")
    return admin


async def session_user(token: str) -> AdminUser:
    """The admin whose session `token` is; raises ApiError 401 when none is open."""
    session = await admins.live_session(token)
    if session is None:
        raise ApiError(401, "unauthorized", "the admin session is invalid or expired; log in again")
    admin = session.admin
    return AdminUser(admin.id, admin.username, admin.role, token, session.expires_at)


def admin_route(path: str, methods: dict[str, tuple[Handler, bool]]) -> Route:
    """A route whose handlers each need an admin session; the flag says whether they write.
    HEAD is answered by the GET handler."""

    async def endpoint(request: Request) -> Response:
        handler, writes = methods["GET" if request.method == "HEAD" else request.method]
        admin = await authenticate_admin(request, write=writes)
        try:
            return await handler(request, admin)
        except (UserNotFound, ConversationNotFound) as exc:
            raise ApiError(404, "not_found", str(exc)) from None

    return Route(path, endpoint, methods=list(methods))


async def login(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    limiter: LoginLimiter = request.app.state.admin_logins
    body = await read_body(request, LoginBody)
    client = request.client.host if request.client else "unknown"
    try:
        attempt = await limiter.begin(body.username, client, request.cookies.get(DEVICE_COOKIE))
    except LoginLocked as exc:
        raise ApiError(
            429, "rate_limited", str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None
    admin = await admins.check_password(body.username, body.password)
    if admin is None:
        raise ApiError(401, "bad_credentials", "wrong username or password")
    device = await limiter.succeeded(attempt)
    token, expires_at = await admins.open_session(
        admin, timedelta(seconds=settings.admin_session_ttl)
    )
    await audit.record(admin.username, "login", f"addr:{client}")
    response = JSONResponse(
        {
            "admin": {"username": admin.username, "role": admin.role.value},
            "token": token,
            "expires_at": expires_at.isoformat(),
            "csrf_token": csrf_token(settings.secret_key, token),
        }
    )
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.admin_session_ttl,
        httponly=True,
        samesite="strict",
        secure=settings.env == "production",
        path="/",
    )
    response.set_cookie(
        DEVICE_COOKIE,
        device,
        max_age=DEVICE_TTL_S,
        httponly=True,
        samesite="strict",
        secure=settings.env == "production",
        path="/api/admin/login",
    )
    return response


async def logout(request: Request) -> Response:
    admin = await authenticate_admin(request, write=False)
    await admins.close_session(admin.token)
    await audit.record(admin.username, "logout")
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def me(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    admin = await authenticate_admin(request, write=False)
    return JSONResponse(
        {
            "username": admin.username,
            "role": admin.role.value,
            "csrf_token": csrf_token(settings.secret_key, admin.token),
        }
    )


routes = [
    Route("/api/admin/login", login, methods=["POST"]),
    Route("/api/admin/logout", logout, methods=["POST"]),
    Route("/api/admin/me", me, methods=["GET"]),
]

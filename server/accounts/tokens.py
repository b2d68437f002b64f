"""User tokens: signed, expiring, and how a request or socket presents one."""

from collections.abc import Mapping

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import HTTPConnection

from server.errors import ApiError
from storage.models import User
from storage.users import get_user


class InvalidToken(Exception):
    """The token is missing, forged, or expired; the message says which."""


class TokenCodec:
    """Issues and checks user tokens, signed with the server's secret key."""

    def __init__(self, secret_key: str, ttl_seconds: int) -> None:
        # A salt of its own keeps user tokens from ever passing as admin sessions later.
        self._serializer = URLSafeTimedSerializer(secret_key, salt="wxgpt-user-token")
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: int) -> str:
        """A token that names the user and expires after the configured time."""
        return self._serializer.dumps({"uid": user_id})

    def user_id(self, token: str) -> int:
        """The user a valid token names; raises InvalidToken."""
        try:
            payload = self._serializer.loads(token, max_age=self.ttl_seconds)
        except SignatureExpired:
            raise InvalidToken("token expired; log in again") from None
        except BadSignature:
            raise InvalidToken("token is not valid") from None
        uid = payload.get("uid") if isinstance(payload, dict) else None
        if not isinstance(uid, int):
            raise InvalidToken("token is not valid")
        return uid


def presented_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The bearer token from `Authorization: Bearer …` or `?token=…`."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query.get("token") or None


async def authenticate(conn: HTTPConnection) -> User:
    """The user behind a request or socket; raises ApiError 401 (no/bad token) or 403 (banned)."""
    codec: TokenCodec = conn.app.state.tokens
    token = presented_token(conn.headers, conn.query_params)
    if token is None:
        raise ApiError(401, "unauthorized", "log in first: send Authorization: Bearer <token>")
    try:
        user_id = codec.user_id(token)
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None
    user = await get_user(user_id)
    if user is None:
        raise ApiError(401, "unauthorized", "the account of this token no longer exists")
    if user.banned:
        raise ApiError(403, "banned", "this account is banned")
    return user

"""User tokens: signed, expiring, and how a request or socket presents one."""

from collections.abc import Mapping
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import HTTPConnection

from server.errors import ApiError
from storage.models import User
from storage.users import get_user


class InvalidToken(Exception):
    """The token is missing, forged, or expired; the message says which."""


@dataclass(frozen=True)
class TokenClaim:
    """Who a valid token names, and when (seconds since the epoch) it stops being valid."""

    user_id: int
    expires_at: float


class TokenCodec:
    """Issues and checks user tokens, signed with the server's secret key."""

    def __init__(self, secret_key: str, ttl_seconds: int) -> None:
        # A salt of its own keeps user tokens from ever passing as admin sessions later.
        self._serializer = URLSafeTimedSerializer(secret_key, salt="wxgpt-user-token")
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: int) -> str:
        """A token that names the user and expires after the configured time."""
        return self._serializer.dumps({"uid": user_id})

    def check(self, token: str) -> TokenClaim:
        """The user a valid token names and its expiry; raises InvalidToken."""
        try:
            payload, signed_at = self._serializer.loads(
                token, max_age=self.ttl_seconds, return_timestamp=True
            )
        except SignatureExpired:
            raise InvalidToken("token expired; log in again") from None
        except BadSignature:
            raise InvalidToken("token is not valid") from None
        uid = payload.get("uid") if isinstance(payload, dict) else None
        if not isinstance(uid, int):
            raise InvalidToken("token is not valid")
        return TokenClaim(uid, signed_at.timestamp() + self.ttl_seconds)


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The bearer token from `Authorization: Bearer …`. Never from the URL: URLs are logged
    (browsers' sockets use a ticket instead, see server/security/tickets.py)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def authenticate(conn: HTTPConnection) -> User:
    """The user behind a request or socket; raises ApiError 401 (no/bad token) or 403 (banned)."""
    return (await authenticate_claim(conn))[0]


async def authenticate_claim(conn: HTTPConnection) -> tuple[User, TokenClaim]:
    """The user behind a bearer token, and the token's claim; raises ApiError 401 or 403."""
    codec: TokenCodec = conn.app.state.tokens
    token = presented_token(conn.headers)
    if token is None:
        raise ApiError(401, "unauthorized", "log in first: send Authorization: Bearer <token>")
    try:
        claim = codec.check(token)
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None
    return await active_user(claim.user_id), claim


async def active_user(user_id: int) -> User:
    """The user of a valid credential; raises ApiError 401 (deleted since) or 403 (banned)."""
    user = await get_user(user_id)
    if user is None:
        raise ApiError(401, "unauthorized", "the account of this token no longer exists")
    if user.banned:
        raise ApiError(403, "banned", "this account is banned")
    return user

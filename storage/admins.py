"""Admin console accounts and their sessions; passwords are kept as Argon2id hashes."""

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from tortoise.exceptions import IntegrityError

from storage.errors import AdminExists
from storage.models import Admin, AdminRole, AdminSession

_hasher = PasswordHasher()
# Verifying against this when the username is unknown costs the same time as a real check,
# so the answer's timing does not tell which usernames exist.
_UNKNOWN_USER_HASH = _hasher.hash(secrets.token_hex(16))


async def create_admin(username: str, password: str, role: AdminRole) -> Admin:
    """A new admin account; raises AdminExists if the username is taken."""
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    try:
        return await Admin.create(username=username, password_hash=password_hash, role=role)
    except IntegrityError:
        raise AdminExists(username) from None


async def check_password(username: str, password: str) -> Admin | None:
    """The admin if the password is theirs, else None; rehashes outdated hashes.

    Argon2 is meant to be slow (tens of milliseconds of CPU), so it runs in a worker thread:
    a flood of logins must not hold up everyone else's sockets.
    """
    admin = await Admin.get_or_none(username=username)
    stored = admin.password_hash if admin else _UNKNOWN_USER_HASH
    if not await asyncio.to_thread(_verifies, stored, password) or admin is None:
        return None
    if _hasher.check_needs_rehash(admin.password_hash):
        admin.password_hash = await asyncio.to_thread(_hasher.hash, password)
        await admin.save(update_fields=["password_hash"])
    return admin


def _verifies(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except VerificationError:
        return False


async def open_session(admin: Admin, ttl: timedelta) -> tuple[str, datetime]:
    """A new session token for the admin and when it expires; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires_at = now + ttl
    await AdminSession.create(admin=admin, token_hash=_digest(token), expires_at=expires_at)
    admin.last_login_at = now
    await admin.save(update_fields=["last_login_at"])
    return token, expires_at


async def live_session(token: str) -> AdminSession | None:
    """The unexpired session this token opens, its admin loaded, or None."""
    return (
        await AdminSession.filter(token_hash=_digest(token), expires_at__gt=datetime.now(UTC))
        .select_related("admin")
        .first()
    )


async def session_admin(token: str) -> Admin | None:
    """The admin whose unexpired session this token is, or None."""
    session = await live_session(token)
    return None if session is None else session.admin


async def close_session(token: str) -> None:
    """End the session (logout); expired sessions of everyone are swept at the same time."""
    await AdminSession.filter(token_hash=_digest(token)).delete()
    await AdminSession.filter(expires_at__lte=datetime.now(UTC)).delete()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

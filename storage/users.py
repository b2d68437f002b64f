"""Users: created on first login with their starting quota; their nickname and avatar."""

from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from storage.models import Avatar, LedgerReason, QuotaLedger, User


async def get_or_create_user(
    openid: str, *, default_quota: int, nickname: str = ""
) -> tuple[User, bool]:
    """The user with this openid, created (with quota and a signup ledger row) if new."""
    existing = await User.get_or_none(openid=openid)
    if existing is not None:
        return existing, False
    try:
        async with in_transaction():
            user = await User.create(openid=openid, nickname=nickname, quota=default_quota)
            await QuotaLedger.create(user=user, delta=default_quota, reason=LedgerReason.SIGNUP)
    except IntegrityError:
        # A concurrent first login for the same openid won the race.
        return await User.get(openid=openid), False
    return user, True


async def get_user(user_id: int) -> User | None:
    """The user, or None if gone."""
    return await User.get_or_none(id=user_id)


async def touch_last_seen(user_id: int) -> None:
    """Record that the user was just active."""
    await User.filter(id=user_id).update(last_seen_at=datetime.now(UTC))


async def set_nickname(user_id: int, nickname: str) -> User:
    """Store the user's new nickname."""
    await User.filter(id=user_id).update(nickname=nickname)
    return await User.get(id=user_id)


async def save_avatar(user_id: int, content_type: str, data: bytes) -> User:
    """Store the user's avatar image and bump its version, in one transaction."""
    async with in_transaction():
        await Avatar.filter(user_id=user_id).delete()
        await Avatar.create(user_id=user_id, content_type=content_type, data=data)
        await User.filter(id=user_id).update(avatar_version=F("avatar_version") + 1)
    return await User.get(id=user_id)


async def get_avatar(user_id: int) -> Avatar | None:
    """The user's avatar image, or None."""
    return await Avatar.get_or_none(user_id=user_id)

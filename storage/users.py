"""Users: created on first login with their starting quota."""

from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from storage.models import LedgerReason, QuotaLedger, User


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

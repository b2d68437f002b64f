"""Quota changes made by an admin: grants and resets, each with its ledger row; and the daily
free replies, which are spent before the bought quota."""

from dataclasses import dataclass
from datetime import date
from typing import Literal

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from storage.errors import UserNotFound
from storage.models import LedgerReason, QuotaLedger, User

QuotaAction = Literal["grant", "set"]


@dataclass(frozen=True)
class FreeDay:
    """Today, in the operator's time zone, and how many free replies each user gets on it."""

    day: date
    allowance: int

    def left(self, user: User) -> int:
        """The user's free replies left today (their stored count belongs to another day
        until their first charge of today resets it)."""
        return user.free_left if user.free_day == self.day else self.allowance


async def refresh_free(user_id: int, free: FreeDay) -> int:
    """Reset the user's free replies if they belong to another day, with a ledger row for the
    change; returns today's. Call inside the transaction that spends them."""
    # FOR NO KEY UPDATE: the charge's ledger row already holds a key-share lock on the user
    # (its foreign key); a plain FOR UPDATE would deadlock against a concurrent charge's.
    user = await User.filter(id=user_id).select_for_update(no_key=True).first()
    if user is None:
        raise UserNotFound(user_id)
    if user.free_day == free.day:
        return user.free_left
    await User.filter(id=user_id).update(free_left=free.allowance, free_day=free.day)
    if free.allowance != user.free_left:
        await QuotaLedger.create(
            user_id=user_id,
            delta=free.allowance - user.free_left,
            reason=LedgerReason.DAILY,
            free=True,
            note=f"free replies for {free.day.isoformat()}",
        )
    return free.allowance


async def change_quota(
    user_id: int, action: QuotaAction, amount: int, *, actor: str, note: str
) -> User:
    """Add `amount` (grant) or make the quota exactly `amount` (set); one transaction."""
    async with in_transaction():
        # Locks the row on PostgreSQL, so a concurrent chat charge cannot slip between the
        # read and the ledger's delta.
        user = await User.filter(id=user_id).select_for_update().first()
        if user is None:
            raise UserNotFound(user_id)
        if action == "grant":
            delta = amount
            await User.filter(id=user_id).update(quota=F("quota") + amount)
        else:
            delta = amount - user.quota
            await User.filter(id=user_id).update(quota=amount)
        await QuotaLedger.create(
            user_id=user_id,
            delta=delta,
            reason=LedgerReason.GRANT if action == "grant" else LedgerReason.SET,
            actor=actor,
            note=note,
        )
        return await User.get(id=user_id)


async def list_ledger(user_id: int, *, offset: int, limit: int) -> tuple[list[QuotaLedger], int]:
    """A page of the user's quota changes, newest first, and their total."""
    query = QuotaLedger.filter(user_id=user_id)
    total = await query.count()
    return list(await query.order_by("-id").offset(offset).limit(limit)), total

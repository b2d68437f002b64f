"""Quota changes made by an admin: grants and resets, each with its ledger row."""

from typing import Literal

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from storage.errors import UserNotFound
from storage.models import LedgerReason, QuotaLedger, User

QuotaAction = Literal["grant", "set"]


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

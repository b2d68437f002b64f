"""Invitations: each user's invite code, and the replies a new user who logs in with one gives
both sides, once per new user and up to a daily number per inviter."""

import secrets
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from storage.errors import UserNotFound
from storage.models import LedgerReason, QuotaLedger, User

# Letters and digits that cannot be mistaken for one another when a code is read out.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8
# The invitee's row is unique per (user, key, reason): a user is rewarded for joining once.
JOINED_KEY = "invitation"


@dataclass(frozen=True)
class Invitation:
    """What an invitation gave: `inviter_reward` is 0 past the inviter's daily cap."""

    inviter_id: int
    invitee_reward: int
    inviter_reward: int


def new_code() -> str:
    """A random invite code of 8 unambiguous letters and digits (40 bits)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


async def invite_code_of(user_id: int) -> str:
    """The user's invite code, given out on first need; raises UserNotFound."""
    while True:
        user = await User.get_or_none(id=user_id)
        if user is None:
            raise UserNotFound(user_id)
        if user.invite_code:
            return user.invite_code
        try:
            # Conditional, so that of two concurrent first requests one code wins.
            await User.filter(id=user_id, invite_code__isnull=True).update(invite_code=new_code())
        except IntegrityError:
            continue  # another user has that code: draw again


async def reward_invitation(
    invitee_id: int, code: str, reward: int, daily_cap: int, day_start: datetime
) -> Invitation | None:
    """Record that the new user `invitee_id` came with `code` and give both sides `reward`
    replies (the inviter only while fewer than `daily_cap` invitations rewarded them since
    `day_start`), each with a ledger row. None when the code is unknown, is the invitee's own,
    or the invitee was invited before; then nothing is written."""
    async with in_transaction():
        inviter = await User.filter(invite_code=code.upper()).select_for_update(no_key=True).first()
        if inviter is None or inviter.id == invitee_id:
            return None
        # One conditional UPDATE: of concurrent logins with codes, one names the inviter.
        if not await User.filter(id=invitee_id, invited_by__isnull=True).update(
            invited_by=inviter.id
        ):
            return None
        await _credit(invitee_id, reward, JOINED_KEY, f"invited by user {inviter.id}")
        # The inviter's row is locked above, so concurrent invitees count one after another.
        rewarded_today = await QuotaLedger.filter(
            user_id=inviter.id,
            reason=LedgerReason.INVITE,
            client_msg_id__startswith="invitee:",
            created_at__gte=day_start,
        ).count()
        inviter_reward = reward if rewarded_today < daily_cap else 0
        if inviter_reward:
            await _credit(inviter.id, reward, f"invitee:{invitee_id}", f"invited user {invitee_id}")
    return Invitation(inviter.id, reward, inviter_reward)


async def _credit(user_id: int, replies: int, key: str, note: str) -> None:
    await QuotaLedger.create(
        user_id=user_id, delta=replies, reason=LedgerReason.INVITE, client_msg_id=key, note=note
    )
    await User.filter(id=user_id).update(quota=F("quota") + replies)

"""Invitations on SQLite and PostgreSQL: codes, once per invitee, the inviter's daily cap."""

import asyncio
from datetime import UTC, datetime, timedelta, timezone

from storage.invitations import invite_code_of, reward_invitation
from storage.models import LedgerReason, QuotaLedger, User
from storage.users import get_or_create_user

# An hour ago, written in a zone ahead of UTC: its digits are later than now's in UTC.
DAY_START = (datetime.now(UTC) - timedelta(hours=1)).astimezone(timezone(timedelta(hours=14)))


async def _user(name: str) -> int:
    user, _ = await get_or_create_user(f"dev:{name}", default_quota=0)
    return user.id


async def _quota(user_id: int) -> int:
    return (await User.get(id=user_id)).quota


async def test_concurrent_first_requests_give_one_code(db: str) -> None:
    user_id = await _user("host")
    codes = await asyncio.gather(*(invite_code_of(user_id) for _ in range(5)))
    assert len(set(codes)) == 1
    assert (await User.get(id=user_id)).invite_code == codes[0]


async def test_an_invitee_is_rewarded_once_and_the_inviter_up_to_the_cap(db: str) -> None:
    host = await _user("host")
    code = await invite_code_of(host)
    guests = [await _user(f"guest{n}") for n in range(5)]
    twice = await asyncio.gather(
        *(reward_invitation(guests[0], code, 4, 3, DAY_START) for _ in range(3))
    )
    assert sum(invitation is not None for invitation in twice) == 1
    rest = await asyncio.gather(
        *(reward_invitation(guest, code, 4, 3, DAY_START) for guest in guests[1:])
    )
    assert all(invitation is not None for invitation in rest)
    assert [await _quota(guest) for guest in guests] == [4] * 5
    assert await _quota(host) == 12
    rows = await QuotaLedger.filter(user_id=host, reason=LedgerReason.INVITE).count()
    assert rows == 3


async def test_ones_own_code_rewards_nothing(db: str) -> None:
    host = await _user("narcissus")
    assert await reward_invitation(host, await invite_code_of(host), 4, 3, DAY_START) is None
    assert await _quota(host) == 0

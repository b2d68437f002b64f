"""Daily free replies: spent before the bought quota, reset each day, every change a ledger row."""

import asyncio
from datetime import date

from storage.errors import QuotaExhausted
from storage.exchanges import begin_exchange, get_balance, refund
from storage.models import LedgerReason, QuotaLedger, User
from storage.quota import FreeDay
from storage.users import get_or_create_user

MONDAY = FreeDay(date(2026, 12, 7), 3)
TUESDAY = FreeDay(date(2026, 12, 8), 3)


async def _user(quota: int) -> int:
    user, _ = await get_or_create_user("dev:free", default_quota=quota)
    return user.id


async def _pools_equal_their_ledgers(user_id: int) -> tuple[int, int]:
    user = await User.get(id=user_id)
    rows = await QuotaLedger.filter(user_id=user_id).values_list("delta", "free")
    bought = sum(delta for delta, free in rows if not free)
    free_rows = sum(delta for delta, free in rows if free)
    assert (user.quota, user.free_left) == (bought, free_rows)
    return user.quota, user.free_left


async def test_free_replies_go_first_and_come_back_the_next_day(db: str) -> None:
    user_id = await _user(2)
    assert await get_balance(user_id, MONDAY) == (2, 3)
    spent = [await begin_exchange(user_id, None, "q", f"m{n}", free=MONDAY) for n in range(4)]
    assert [(e.quota_left, e.free_left) for e in spent] == [(2, 2), (2, 1), (2, 0), (1, 0)]
    assert await _pools_equal_their_ledgers(user_id) == (1, 0)
    tuesday = await begin_exchange(user_id, None, "q", "t1", free=TUESDAY)
    assert (tuesday.quota_left, tuesday.free_left) == (1, 2)
    resets = await QuotaLedger.filter(user_id=user_id, reason=LedgerReason.DAILY).order_by("id")
    assert [(row.delta, row.note) for row in resets] == [
        (3, "free replies for 2026-12-07"),
        (3, "free replies for 2026-12-08"),
    ]
    assert await _pools_equal_their_ledgers(user_id) == (1, 2)


async def test_unspent_free_replies_do_not_pile_up(db: str) -> None:
    user_id = await _user(5)
    await begin_exchange(user_id, None, "q", "m1", free=MONDAY)
    await begin_exchange(user_id, None, "q", "t1", free=TUESDAY)
    assert await _pools_equal_their_ledgers(user_id) == (5, 2)
    # The operator turns free replies off: what was left of them goes, with its ledger row.
    await begin_exchange(user_id, None, "q", "w1", free=FreeDay(date(2026, 12, 9), 0))
    assert await _pools_equal_their_ledgers(user_id) == (4, 0)


async def test_concurrent_charges_never_take_either_pool_below_zero(db: str) -> None:
    user_id = await _user(2)
    results = await asyncio.gather(
        *(begin_exchange(user_id, None, "q", f"c{n}", free=MONDAY) for n in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 5
    assert all(isinstance(r, QuotaExhausted) for r in results if isinstance(r, BaseException))
    assert await _pools_equal_their_ledgers(user_id) == (0, 0)


async def test_a_refund_goes_back_to_the_pool_it_came_from(db: str) -> None:
    user_id = await _user(1)
    await begin_exchange(user_id, None, "q", "f1", free=FreeDay(MONDAY.day, 1))
    await begin_exchange(user_id, None, "q", "b1", free=FreeDay(MONDAY.day, 1))
    assert await _pools_equal_their_ledgers(user_id) == (0, 0)
    assert await refund(user_id, "f1", "generation failed") == 0
    assert await _pools_equal_their_ledgers(user_id) == (0, 1)
    assert await refund(user_id, "b1", "generation failed") == 1
    assert await _pools_equal_their_ledgers(user_id) == (1, 1)

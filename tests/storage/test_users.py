import asyncio

from storage.exchanges import get_quota
from storage.models import LedgerReason, QuotaLedger, User
from storage.users import get_or_create_user, get_user, touch_last_seen


async def test_first_login_creates_one_user_even_when_racing(db: str) -> None:
    results = await asyncio.gather(
        *(get_or_create_user("o-race", default_quota=7, nickname="Ann") for _ in range(6))
    )
    assert len({user.id for user, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 5 + [True]
    assert await User.filter(openid="o-race").count() == 1
    signups = await QuotaLedger.filter(reason=LedgerReason.SIGNUP)
    assert [row.delta for row in signups] == [7]
    user = await get_user(results[0][0].id)
    assert user is not None
    assert (user.nickname, user.quota, user.banned, user.last_seen_at) == ("Ann", 7, False, None)
    assert await get_quota(user.id) == 7


async def test_a_returning_user_keeps_their_quota(db: str) -> None:
    first, created = await get_or_create_user("dev:42", default_quota=5)
    assert created
    await User.filter(id=first.id).update(quota=1)
    again, created = await get_or_create_user("dev:42", default_quota=5)
    assert (again.id, again.quota, created) == (first.id, 1, False)
    assert await QuotaLedger.filter(user_id=first.id).count() == 1


async def test_last_seen_is_recorded(db: str) -> None:
    user, _ = await get_or_create_user("o-seen", default_quota=1)
    await touch_last_seen(user.id)
    seen = await get_user(user.id)
    assert seen is not None
    assert seen.last_seen_at is not None
    assert seen.last_seen_at >= seen.created_at
    assert await get_user(999999) is None

"""Orders on SQLite and PostgreSQL: paid once under concurrent notices, refunds, revenue."""

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from storage import payments
from storage.models import LedgerReason, OrderState, QuotaLedger, User
from storage.users import get_or_create_user


async def _order(now: datetime) -> tuple[User, str]:
    user, _ = await get_or_create_user("o-buyer", default_quota=5)
    product = await payments.create_product("10 replies", 10, 300, True)
    order = await payments.create_order(user.id, product.id, now, now + timedelta(minutes=30))
    return user, order.out_trade_no


async def _ledger_sum(user_id: int) -> int:
    rows = await QuotaLedger.filter(user_id=user_id, free=False).values_list("delta", flat=True)
    return sum(int(delta) for delta in rows)


async def test_concurrent_notices_credit_an_order_once(db: str) -> None:
    now = datetime.now(UTC)
    user, number = await _order(now)
    credits = await asyncio.gather(*(payments.mark_paid(number, "4200x", now) for _ in range(8)))
    assert sum(credit.credited for credit in credits) == 1
    fresh = await User.get(id=user.id)
    assert fresh.quota == 15 == await _ledger_sum(user.id)
    assert await QuotaLedger.filter(user_id=user.id, reason=LedgerReason.PURCHASE).count() == 1


async def test_a_refund_takes_back_only_what_is_left(db: str) -> None:
    now = datetime.now(UTC)
    user, number = await _order(now)
    credit = await payments.mark_paid(number, "4200x", now)
    await User.filter(id=user.id).update(quota=4)
    await QuotaLedger.create(user_id=user.id, delta=-11, reason=LedgerReason.SET, actor="t")
    order, taken = await payments.mark_refunded(credit.order.id, now, "admin:root")
    assert (order.state, taken) == (OrderState.REFUNDED, 4)
    assert (await User.get(id=user.id)).quota == 0 == await _ledger_sum(user.id)
    with pytest.raises(payments.OrderNotRefundable, match="refunded, not paid"):
        await payments.mark_refunded(order.id, now, "admin:root")


async def test_revenue_is_counted_per_local_day_without_refunds(db: str) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    # 23:30 UTC is 07:30 the next morning in Shanghai.
    late = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    _, first = await _order(late)
    await payments.mark_paid(first, "a", late)
    product = await payments.create_product("100 replies", 100, 1500, True)
    user = await User.get(openid="o-buyer")
    second = await payments.create_order(user.id, product.id, late, late + timedelta(hours=1))
    await payments.mark_paid(second.out_trade_no, "b", late - timedelta(hours=16))
    refunded = await payments.create_order(user.id, product.id, late, late + timedelta(hours=1))
    credit = await payments.mark_paid(refunded.out_trade_no, "c", late)
    await payments.mark_refunded(credit.order.id, late, "admin:root")
    days = dict(await payments.revenue_per_day(late, zone, days=3))
    assert days == {"2026-11-30": 0, "2026-12-01": 1500, "2026-12-02": 300}

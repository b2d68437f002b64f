"""The store's writes and reads: products, orders, and the quota a paid order credits.

Crediting is exactly-once by two guards in one transaction: the order moves out of `pending`
by one conditional UPDATE (of concurrent notices only one moves it), and the ledger row is
unique per (user, out_trade_no, reason) as a chat charge is per client_msg_id.
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from storage.errors import StorageError
from storage.models import LedgerReason, Order, OrderState, Product, QuotaLedger, User


class ProductNotFound(StorageError):
    """No product has this id, or it is off sale; nothing was written."""


class OrderNotFound(StorageError):
    """No order has this id (or not for this user); nothing was written."""


class OrderNotRefundable(StorageError):
    """Only a paid order can be refunded; the message says what state it is in."""


@dataclass(frozen=True)
class Credit:
    """What marking an order paid did: `credited` False when it had been already."""

    order: Order
    credited: bool
    quota: int | None


def new_out_trade_no(now: datetime) -> str:
    """A merchant order number: the UTC time to the second, then 12 random hex digits
    (WeChat allows 6 to 32 of [A-Za-z0-9_-*])."""
    return now.astimezone(UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(6)


def refund_number(order: Order) -> str:
    """The refund's number, fixed per order: asking twice asks WeChat for the same refund."""
    return "R" + order.out_trade_no


async def list_products(*, only_active: bool) -> list[Product]:
    """Products cheapest first; only those on sale unless told otherwise."""
    query = Product.filter(active=True) if only_active else Product.all()
    return list(await query.order_by("price_fen", "id"))


async def create_product(name: str, replies: int, price_fen: int, active: bool) -> Product:
    """A new product."""
    return await Product.create(name=name, replies=replies, price_fen=price_fen, active=active)


async def update_product(product_id: int, changes: dict[str, Any]) -> Product:
    """Change a product's fields; orders keep what they were bought with. Raises
    ProductNotFound."""
    if changes and not await Product.filter(id=product_id).update(**changes):
        raise ProductNotFound(f"product {product_id} not found")
    product = await Product.get_or_none(id=product_id)
    if product is None:
        raise ProductNotFound(f"product {product_id} not found")
    return product


async def create_order(user_id: int, product_id: int, now: datetime, expires_at: datetime) -> Order:
    """A pending order for a product on sale, with the product's terms copied in; raises
    ProductNotFound."""
    product = await Product.get_or_none(id=product_id, active=True)
    if product is None:
        raise ProductNotFound(f"product {product_id} is not on sale")
    return await Order.create(
        out_trade_no=new_out_trade_no(now),
        user_id=user_id,
        product_id=product.id,
        product_name=product.name,
        replies=product.replies,
        amount_fen=product.price_fen,
        expires_at=expires_at,
    )


async def set_prepay_id(order_id: int, prepay_id: str) -> None:
    """Keep the prepay_id WeChat Pay gave the order."""
    await Order.filter(id=order_id).update(prepay_id=prepay_id)


async def find_order(out_trade_no: str, user_id: int | None = None) -> Order | None:
    """The order with this number (only if it is `user_id`'s, when given)."""
    query = Order.filter(out_trade_no=out_trade_no)
    if user_id is not None:
        query = query.filter(user_id=user_id)
    return await query.first()


async def mark_paid(out_trade_no: str, transaction_id: str | None, now: datetime) -> Credit:
    """Mark the order paid and credit its replies, both or neither, once however often it is
    called; raises OrderNotFound.

    A closed order is credited too: the money arrived, whatever our side thought of it.
    """
    async with in_transaction():
        taken = await Order.filter(
            out_trade_no=out_trade_no, state__in=[OrderState.PENDING, OrderState.CLOSED]
        ).update(state=OrderState.PAID, transaction_id=transaction_id, paid_at=now)
        order = await Order.get_or_none(out_trade_no=out_trade_no)
        if order is None:
            raise OrderNotFound(f"order {out_trade_no} not found")
        if not taken or order.user_id is None:
            return Credit(order, False, None)
        await QuotaLedger.create(
            user_id=order.user_id,
            delta=order.replies,
            reason=LedgerReason.PURCHASE,
            client_msg_id=out_trade_no,
            note=f"bought {order.product_name} ({order.amount_fen} fen)",
        )
        await User.filter(id=order.user_id).update(quota=F("quota") + order.replies)
        user = await User.get(id=order.user_id)
    return Credit(order, True, user.quota)


async def close_order(out_trade_no: str, now: datetime) -> bool:
    """Close a pending order; False when it was not pending any more."""
    closed = await Order.filter(out_trade_no=out_trade_no, state=OrderState.PENDING).update(
        state=OrderState.CLOSED, closed_at=now
    )
    return bool(closed)


async def pending_orders(created_before: datetime, limit: int = 100) -> list[Order]:
    """Pending orders placed before the given time, oldest first."""
    return list(
        await Order.filter(state=OrderState.PENDING, created_at__lt=created_before)
        .order_by("created_at")
        .limit(limit)
    )


async def get_order(order_id: int) -> Order:
    """The order; raises OrderNotFound."""
    order = await Order.get_or_none(id=order_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} not found")
    return order


def check_refundable(order: Order) -> None:
    """Raise OrderNotRefundable unless the order is paid."""
    if order.state != OrderState.PAID:
        raise OrderNotRefundable(f"order {order.out_trade_no} is {order.state.value}, not paid")


async def mark_refunded(order_id: int, now: datetime, actor: str) -> tuple[Order, int]:
    """Mark a paid order refunded and take back its replies (as many as are left), both or
    neither; returns the order and the replies taken. Raises OrderNotFound or
    OrderNotRefundable."""
    async with in_transaction():
        order = await get_order(order_id)
        check_refundable(order)
        await Order.filter(id=order_id, state=OrderState.PAID).update(
            state=OrderState.REFUNDED, refunded_at=now, out_refund_no=refund_number(order)
        )
        taken = 0
        if order.user_id is not None:
            user = await User.filter(id=order.user_id).select_for_update().first()
            # Replies already spent cannot be taken back; the quota never goes below zero.
            taken = min(order.replies, user.quota) if user else 0
            await QuotaLedger.create(
                user_id=order.user_id,
                delta=-taken,
                reason=LedgerReason.PAY_REFUND,
                client_msg_id=order.out_trade_no,
                actor=actor,
                note=f"refund of {order.product_name} ({order.amount_fen} fen)",
            )
            await User.filter(id=order.user_id).update(quota=F("quota") - taken)
        order = await get_order(order_id)
    return order, taken


async def list_orders(
    state: OrderState | None, user_id: int | None, *, offset: int, limit: int
) -> tuple[list[Order], int]:
    """A page of orders, newest first, with their users, and how many match."""
    query = Order.all()
    if state is not None:
        query = query.filter(state=state)
    if user_id is not None:
        query = query.filter(user_id=user_id)
    total = await query.count()
    orders = await query.prefetch_related("user").order_by("-id").offset(offset).limit(limit)
    return list(orders), total


async def revenue_per_day(now: datetime, zone: tzinfo, days: int = 14) -> list[tuple[str, int]]:
    """Fen taken per local calendar day (paid, not refunded), oldest first, ending today."""
    today = now.astimezone(zone).date()
    first_day = today - timedelta(days=days - 1)
    start = datetime.combine(first_day, datetime.min.time(), zone)
    per_day = {(first_day + timedelta(days=i)).isoformat(): 0 for i in range(days)}
    # Summed in Python, as directory.stats does: portable, and bounded to `days` of orders.
    paid = await Order.filter(state=OrderState.PAID, paid_at__gte=start).values_list(
        "paid_at", "amount_fen"
    )
    for moment, amount in paid:
        assert isinstance(moment, datetime)
        day = moment.astimezone(zone).date().isoformat()
        if day in per_day:
            per_day[day] += int(amount)
    return list(per_day.items())

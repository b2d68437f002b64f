"""The store: placing orders, crediting paid ones (from a notice or a query), reconciling
pending ones, and refunds. One object per process, off when WeChat Pay is not configured."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from server.clock import Clock
from server.config import Settings
from server.coordination.base import Coordinator
from server.payments.wechatpay import (
    MerchantConfig,
    NoticeRejected,
    Transaction,
    WeChatPay,
    WeChatPayError,
    order_expiry,
)
from storage import payments
from storage.models import Order, User

logger = logging.getLogger(__name__)

# Only one replica asks WeChat about pending orders at a time.
RECONCILE_LEASE = "payments:reconcile"


@dataclass(frozen=True)
class PlacedOrder:
    """An order placed at WeChat Pay and what wx.requestPayment needs to pay it."""

    order: Order
    payment: dict[str, str]


class StoreOff(Exception):
    """The store is not configured; the message says what is missing."""


class Store:
    """Sells the products for WeChat Pay; `pay` is None (and every sale refused) when off."""

    def __init__(
        self,
        settings: Settings,
        coordinator: Coordinator,
        clock: Clock,
        count: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self._coordinator = coordinator
        self._clock = clock
        # Hears of each credit, refused notice, reconciliation failure and refund (/metrics).
        self._count = count
        missing = settings.wechatpay_missing()
        self.off_reason = (
            "the store is off: WeChat Pay is not configured on this server" if missing else None
        )
        self.pay = WeChatPay(MerchantConfig.from_settings(settings)) if not missing else None
        self._task: asyncio.Task[None] | None = None
        # Failed rounds and orders of reconciliation, for /readyz; the causes are in the log.
        self.reconcile_failures = 0

    @property
    def enabled(self) -> bool:
        return self.pay is not None

    async def start(self) -> None:
        """Open the connection to WeChat Pay and start reconciling."""
        if self.pay is None:
            logger.info("%s (set the WXGPT_WECHATPAY_* settings to sell replies)", self.off_reason)
            return
        await self.pay.start()
        self._task = asyncio.create_task(self._reconcile_forever(), name="wxgpt-reconcile")
        logger.info("the store is on: WeChat Pay merchant %s", self.pay.config.mchid)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            await self._coordinator.release(RECONCILE_LEASE)
        if self.pay is not None:
            await self.pay.close()

    def _require(self) -> WeChatPay:
        if self.pay is None:
            raise StoreOff(self.off_reason)
        return self.pay

    async def place_order(self, user: User, product_id: int) -> PlacedOrder:
        """Create our order and place it at WeChat Pay; raises StoreOff, ProductNotFound or
        WeChatPayError (then the order is closed, never left for reconciliation)."""
        pay = self._require()
        now = self._clock()
        expires = order_expiry(now, self.settings.order_ttl)
        order = await payments.create_order(user.id, product_id, now, expires)
        try:
            prepay_id = await pay.create_jsapi(
                order.out_trade_no, order.product_name, order.amount_fen, user.openid, expires
            )
        except WeChatPayError:
            await payments.close_order(order.out_trade_no, now)
            raise
        await payments.set_prepay_id(order.id, prepay_id)
        return PlacedOrder(order, pay.payment_params(prepay_id))

    async def handle_notice(self, headers: dict[str, str], body: bytes) -> None:
        """Verify a notice and credit the order it reports paid; raises NoticeRejected."""
        pay = self._require()
        try:
            event, transaction = await pay.verify_notice(headers, body, self._clock())
            if transaction is None:
                logger.info("WeChat Pay notice %s acknowledged; nothing to do for it", event)
                return
            await self._settle(transaction, "notice")
        except NoticeRejected:
            self._count("notice_refused")
            raise

    async def _settle(self, transaction: Transaction, source: str) -> None:
        """Credit a successful transaction after checking it against our order; raises
        NoticeRejected when it is not ours or does not match."""
        pay = self._require()
        order = await payments.find_order(transaction.out_trade_no)
        if order is None:
            raise NoticeRejected(f"order {transaction.out_trade_no} is not one of ours")
        mismatch = _mismatch(transaction, order, pay.config)
        if mismatch:
            raise NoticeRejected(f"order {order.out_trade_no}: {mismatch}")
        if transaction.trade_state != "SUCCESS":
            logger.info(
                "order %s is %s at WeChat Pay (%s)",
                order.out_trade_no,
                transaction.trade_state,
                source,
            )
            return
        credit = await payments.mark_paid(
            order.out_trade_no, transaction.transaction_id, self._clock()
        )
        if credit.credited:
            self._count("credited")
            logger.info(
                "order %s paid (%s): user %s credited %d replies, quota now %s",
                order.out_trade_no,
                source,
                order.user_id,
                order.replies,
                credit.quota,
            )

    async def reconcile_once(self) -> int:
        """Ask WeChat Pay about orders pending for WXGPT_RECONCILE_AFTER seconds: credit paid
        ones, close expired ones. Returns how many were settled either way."""
        pay = self._require()
        now = self._clock()
        settled = 0
        cutoff = now - timedelta(seconds=self.settings.reconcile_after)
        for order in await payments.pending_orders(cutoff):
            try:
                transaction = await pay.query(order.out_trade_no)
                if transaction is not None and transaction.trade_state == "SUCCESS":
                    await self._settle(transaction, "reconciliation")
                    settled += 1
                elif order.expires_at <= now:
                    if transaction is not None and transaction.trade_state == "NOTPAY":
                        await pay.close_order(order.out_trade_no)
                    if await payments.close_order(order.out_trade_no, now):
                        logger.info("order %s expired unpaid; closed", order.out_trade_no)
                        settled += 1
            except (WeChatPayError, NoticeRejected) as exc:
                self.reconcile_failures += 1
                self._count("reconcile_failed")
                logger.warning("reconciling order %s failed: %s", order.out_trade_no, exc)
        return settled

    async def refund(self, order_id: int, actor: str) -> tuple[Order, int]:
        """Refund a paid order in full through WeChat Pay, then take its replies back with a
        ledger row; returns the order and the replies taken. Raises StoreOff, OrderNotFound,
        OrderNotRefundable or WeChatPayError (then nothing is written)."""
        pay = self._require()
        order = await payments.get_order(order_id)
        payments.check_refundable(order)
        status = await pay.refund(
            order.out_trade_no, payments.refund_number(order), order.amount_fen, order.amount_fen
        )
        refunded, taken = await payments.mark_refunded(order_id, self._clock(), actor)
        self._count("refunded")
        logger.info(
            "order %s refunded (%s) by %s; %d replies taken back",
            order.out_trade_no,
            status,
            actor,
            taken,
        )
        return refunded, taken

    async def _leads_reconciliation(self) -> bool:
        """Whether this replica holds the reconciliation lease, taking it when it is free."""
        coordinator = self._coordinator
        if await coordinator.holder(RECONCILE_LEASE) == coordinator.replica_id:
            return True
        return await coordinator.claim(RECONCILE_LEASE)

    async def _reconcile_forever(self) -> None:
        while True:
            try:
                if await self._leads_reconciliation():
                    await self.reconcile_once()
            except Exception:
                self.reconcile_failures += 1
                self._count("reconcile_failed")
                logger.exception("reconciling orders failed; trying again")
            await asyncio.sleep(self.settings.reconcile_interval)


def _mismatch(transaction: Transaction, order: Order, config: MerchantConfig) -> str | None:
    if transaction.mchid != config.mchid:
        return f"mchid {transaction.mchid!r} is not ours"
    if transaction.appid != config.appid:
        return f"appid {transaction.appid!r} is not ours"
    if transaction.trade_state == "SUCCESS" and transaction.total_fen != order.amount_fen:
        return f"amount {transaction.total_fen} fen, but the order is for {order.amount_fen} fen"
    return None

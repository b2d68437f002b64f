"""The store against the WeChat Pay stand-in: orders, notices, reconciliation and refunds."""

import base64
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from server.payments.store import Store
from storage import payments
from storage.models import LedgerReason, Order, OrderState, QuotaLedger, User
from tests.live_server import LiveServer, error_of
from tests.server.conftest import ServerFactory
from tests.server.payments.conftest import PACK_FEN, PACK_REPLIES
from tests.wechatpay_server import APPID, MCHID, WeChatPayStandIn, buy, rsa_verify


def _notify(server: LiveServer, notice: tuple[dict[str, str], bytes]) -> httpx.Response:
    headers, body = notice
    return httpx.post(server.url + "/api/pay/wechat/notify", content=body, headers=headers)


def _quota_and_ledger(server: LiveServer, user_id: int) -> tuple[int, int]:
    async def read() -> tuple[int, int]:
        user = await User.get(id=user_id)
        rows = await QuotaLedger.filter(user_id=user_id, free=False).values_list("delta", flat=True)
        return user.quota, sum(int(delta) for delta in rows)

    return server.call(read())


def _metrics(server: LiveServer) -> str:
    return httpx.get(server.url + "/metrics").text


def _purchases(server: LiveServer, user_id: int) -> int:
    return server.call(QuotaLedger.filter(user_id=user_id, reason=LedgerReason.PURCHASE).count())


def test_without_wechatpay_settings_the_store_is_off_and_says_so(server: LiveServer) -> None:
    token = server.login()
    listing = server.get("/api/pay/products", token).json()
    assert listing["enabled"] is False
    assert "not configured" in listing["reason"]
    assert listing["products"] == []
    response = httpx.post(
        server.url + "/api/pay/orders",
        json={"product_id": 1},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert error_of(response)[:2] == (503, "unavailable")
    assert httpx.get(server.url + "/readyz").json()["store"] == {
        "enabled": False,
        "reconcile_failures": 0,
    }


def test_an_order_is_placed_signed_and_payable(
    shop: LiveServer, wechatpay: WeChatPayStandIn
) -> None:
    _, user_id, placed = buy(shop)
    order, payment = placed["order"], placed["payment"]
    assert (order["state"], order["amount_fen"], order["replies"]) == ("pending", 600, 30)
    at_wechat = wechatpay.orders[order["out_trade_no"]]
    assert (at_wechat.appid, at_wechat.mchid, at_wechat.total) == (APPID, MCHID, PACK_FEN)
    assert at_wechat.openid == "dev:buyer"
    assert wechatpay.refused == []
    # wx.requestPayment's paySign is the merchant's RSA signature of appid, time, nonce, package.
    assert payment["signType"] == "RSA"
    assert payment["package"].startswith("prepay_id=wx")
    message = f"{APPID}\n{payment['timeStamp']}\n{payment['nonceStr']}\n{payment['package']}\n"
    assert rsa_verify(wechatpay.merchant_key.public_key(), message, payment["paySign"])
    assert _quota_and_ledger(shop, user_id) == (100, 100)


def test_an_unknown_or_inactive_product_is_not_found(shop: LiveServer) -> None:
    token = shop.login()
    off = shop.call(payments.create_product("old pack", 5, 100, False))
    for product_id in (off.id, 999):
        response = httpx.post(
            shop.url + "/api/pay/orders",
            json={"product_id": product_id},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert error_of(response)[:2] == (404, "not_found")


def test_a_notice_sent_three_times_and_concurrently_credits_once(
    shop: LiveServer, wechatpay: WeChatPayStandIn
) -> None:
    token, user_id, placed = buy(shop)
    number = placed["order"]["out_trade_no"]
    paid = wechatpay.pay(number)
    for _ in range(3):
        assert _notify(shop, wechatpay.notice(paid.transaction())).status_code == 204
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        notice = wechatpay.notice(paid.transaction())
        barrier.wait()
        statuses.append(_notify(shop, notice).status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [204] * 4
    assert _quota_and_ledger(shop, user_id) == (130, 130)
    assert _purchases(shop, user_id) == 1
    polled = shop.get(f"/api/pay/orders/{number}", token).json()
    assert (polled["order"]["state"], polled["quota"]) == ("paid", 130)
    assert 'wxgpt_payments_total{event="credited"} 1.0' in _metrics(shop)


def _tampered(
    wechatpay: WeChatPayStandIn, transaction: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "bad signature": wechatpay.notice(transaction, signing_key=_other_key()),
        "old timestamp": wechatpay.notice(transaction, timestamp=int(now.timestamp()) - 301),
        "wrong amount": wechatpay.notice({**transaction, "amount": {"total": 1}}),
        "foreign order": wechatpay.notice({**transaction, "out_trade_no": "20261202000000abc"}),
        "foreign merchant": wechatpay.notice({**transaction, "mchid": "1900000999"}),
        "foreign app": wechatpay.notice({**transaction, "appid": "wx-other"}),
    }


def _other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_a_notice_failing_any_check_is_refused_and_credits_nothing(
    shop: LiveServer, wechatpay: WeChatPayStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    _, user_id, placed = buy(shop)
    paid = wechatpay.pay(placed["order"]["out_trade_no"])
    now = datetime.now(UTC).replace(microsecond=0)
    shop.app.state.clock = lambda: now
    reasons = {
        "bad signature": "signature",
        "old timestamp": "301 s off",
        "wrong amount": "amount 1 fen",
        "foreign order": "not one of ours",
        "foreign merchant": "mchid",
        "foreign app": "appid",
    }
    for case, notice in _tampered(wechatpay, paid.transaction(), now).items():
        response = _notify(shop, notice)
        assert response.status_code == 400, case
        assert response.json()["code"] == "FAIL"
        assert reasons[case] in response.json()["message"], case
    foreign_key = wechatpay.notice(paid.transaction(), apiv3_key="k" * 32)
    assert "encryption is not valid" in _notify(shop, foreign_key).json()["message"]
    assert _quota_and_ledger(shop, user_id) == (100, 100)
    assert _purchases(shop, user_id) == 0
    order = shop.call(Order.get(out_trade_no=paid.out_trade_no))
    assert order.state == OrderState.PENDING
    assert "WeChat Pay notice refused" in caplog.text
    assert 'wxgpt_payments_total{event="notice_refused"} 7.0' in _metrics(shop)
    assert wechatpay.apiv3_key not in caplog.text


def test_reconciliation_credits_a_lost_notice_and_closes_expired_orders(
    shop: LiveServer, wechatpay: WeChatPayStandIn
) -> None:
    _, user_id, paid_order = buy(shop, "payer")
    _, other_id, unpaid_order = buy(shop, "waverer")
    wechatpay.pay(paid_order["order"]["out_trade_no"])
    store: Store = shop.app.state.store
    assert shop.call(store.reconcile_once()) == 1
    assert _quota_and_ledger(shop, user_id) == (130, 130)
    unpaid = unpaid_order["order"]["out_trade_no"]
    assert shop.call(Order.get(out_trade_no=unpaid)).state == OrderState.PENDING
    # Past the order's expiry it is closed, at WeChat Pay too, so it can no longer be paid.
    later = datetime.now(UTC) + timedelta(seconds=shop.settings.order_ttl + 1)
    shop.app.state.clock = lambda: later
    assert shop.call(store.reconcile_once()) == 1
    assert shop.call(Order.get(out_trade_no=unpaid)).state == OrderState.CLOSED
    assert wechatpay.closed == [unpaid]
    assert _quota_and_ledger(shop, other_id) == (100, 100)
    assert shop.call(store.reconcile_once()) == 0


def test_a_refund_goes_through_wechatpay_and_writes_its_ledger_row(
    shop: LiveServer, wechatpay: WeChatPayStandIn
) -> None:
    _, user_id, placed = buy(shop)
    number = placed["order"]["out_trade_no"]
    _notify(shop, wechatpay.notice(wechatpay.pay(number).transaction()))
    order = shop.call(Order.get(out_trade_no=number))
    store: Store = shop.app.state.store
    refunded, taken = shop.call(store.refund(order.id, "admin:root"))
    assert (refunded.state, taken) == (OrderState.REFUNDED, PACK_REPLIES)
    assert wechatpay.orders[number].refunds[0]["amount"] == {
        "refund": PACK_FEN,
        "total": PACK_FEN,
        "currency": "CNY",
    }
    assert _quota_and_ledger(shop, user_id) == (100, 100)
    row = shop.call(QuotaLedger.get(user_id=user_id, reason=LedgerReason.PAY_REFUND))
    assert (row.delta, row.actor) == (-PACK_REPLIES, "admin:root")


def test_the_merchant_signature_is_what_the_standin_checks(wechatpay: WeChatPayStandIn) -> None:
    """The stand-in refuses a request not signed by the merchant: the tests above that it
    accepted were signed correctly."""
    response = httpx.post(
        wechatpay.url + "/v3/pay/transactions/jsapi",
        json={},
        headers={
            "Authorization": 'WECHATPAY2-SHA256-RSA2048 mchid="1900000109",signature="'
            + base64.b64encode(b"forged").decode()
            + '"'
        },
    )
    assert response.status_code == 401
    assert wechatpay.refused == ["/v3/pay/transactions/jsapi"]


def test_the_background_reconciliation_keeps_crediting_lost_notices(
    start_server: ServerFactory, wechatpay: WeChatPayStandIn
) -> None:
    server = start_server(**wechatpay.settings(), reconcile_after=0, reconcile_interval=0.05)
    server.call(payments.create_product("30 replies", PACK_REPLIES, PACK_FEN, True))
    # Two rounds: the replica that took the reconciliation lease goes on reconciling.
    for wid in ("first", "second"):
        token, _, placed = buy(server, wid)
        number = placed["order"]["out_trade_no"]
        wechatpay.pay(number)
        assert _poll_until_paid(server, token, number) == 100 + PACK_REPLIES


def _poll_until_paid(server: LiveServer, token: str, number: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = server.get(f"/api/pay/orders/{number}", token).json()
        if answer["order"]["state"] == "paid":
            return int(answer["quota"])
        time.sleep(0.05)
    raise AssertionError(f"order {number} was never credited")

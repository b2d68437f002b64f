"""The store in the admin API: products, orders, refunds, revenue on the dashboard."""

import httpx

from storage.models import LedgerReason, QuotaLedger
from tests.live_server import LiveServer, error_of
from tests.server.payments.conftest import PACK_FEN, PACK_REPLIES
from tests.wechatpay_server import WeChatPayStandIn, buy


def _call(server: LiveServer, method: str, path: str, token: str, **body: object) -> httpx.Response:
    return httpx.request(
        method,
        server.url + path,
        json=body or None,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_products_are_created_changed_and_taken_off_sale(shop: LiveServer) -> None:
    root = shop.admin_login()
    created = _call(
        shop, "POST", "/api/admin/products", root, name="100 次", replies=100, price_fen=1500
    )
    assert created.status_code == 201
    product = created.json()
    changed = _call(shop, "PATCH", f"/api/admin/products/{product['id']}", root, active=False)
    assert changed.json() == {**product, "active": False}
    listed = _call(shop, "GET", "/api/admin/products", root).json()["items"]
    assert [(p["name"], p["active"]) for p in listed] == [("30 replies", True), ("100 次", False)]
    on_sale = shop.get("/api/pay/products", shop.login()).json()["products"]
    assert [p["name"] for p in on_sale] == ["30 replies"]
    bad = _call(shop, "POST", "/api/admin/products", root, name="free", replies=1, price_fen=0)
    assert error_of(bad)[:2] == (400, "bad_request")
    assert "price_fen" in error_of(bad)[2]
    assert error_of(_call(shop, "PATCH", "/api/admin/products/999", root, active=True))[0] == 404
    ops = shop.admin_login("watcher", role="ops")
    refused = _call(shop, "POST", "/api/admin/products", ops, name="x", replies=1, price_fen=1)
    assert refused.status_code == 403


def test_orders_are_listed_and_a_paid_one_refunded_once(
    shop: LiveServer, wechatpay: WeChatPayStandIn
) -> None:
    root = shop.admin_login()
    _, user_id, paid = buy(shop, "payer")
    buy(shop, "browser")
    number = paid["order"]["out_trade_no"]
    headers, body = wechatpay.notice(wechatpay.pay(number).transaction())
    httpx.post(shop.url + "/api/pay/wechat/notify", content=body, headers=headers)
    orders = _call(shop, "GET", "/api/admin/orders", root).json()
    assert orders["total"] == 2
    assert [o["state"] for o in orders["items"]] == ["pending", "paid"]
    listed = _call(shop, "GET", "/api/admin/orders?state=paid", root).json()["items"]
    assert [(o["out_trade_no"], o["user"]["id"], o["amount_fen"]) for o in listed] == [
        (number, user_id, PACK_FEN)
    ]
    assert listed[0]["paid_at"] is not None
    stats = _call(shop, "GET", "/api/admin/stats", root).json()
    assert stats["revenue_per_day"][-1]["fen"] == PACK_FEN

    pending_id = orders["items"][0]["id"]
    refused = _call(shop, "POST", f"/api/admin/orders/{pending_id}/refund", root)
    assert error_of(refused)[:2] == (409, "not_refundable")
    refunded = _call(shop, "POST", f"/api/admin/orders/{listed[0]['id']}/refund", root)
    assert refunded.status_code == 200
    assert (refunded.json()["state"], refunded.json()["replies_taken"]) == (
        "refunded",
        PACK_REPLIES,
    )
    again = _call(shop, "POST", f"/api/admin/orders/{listed[0]['id']}/refund", root)
    assert error_of(again)[:2] == (409, "not_refundable")
    rows = shop.call(QuotaLedger.filter(user_id=user_id, reason=LedgerReason.PAY_REFUND))
    assert [(row.delta, row.actor) for row in rows] == [(-PACK_REPLIES, "admin:root")]
    assert len(wechatpay.orders[number].refunds) == 1
    stats = _call(shop, "GET", "/api/admin/stats", root).json()
    assert stats["revenue_per_day"][-1]["fen"] == 0
    audit = _call(shop, "GET", "/api/admin/audit?action=order", root).json()["items"]
    assert [entry["action"] for entry in audit] == ["order.refund"]

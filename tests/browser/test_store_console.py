"""The store page of the admin console in Debian's Chromium, selling through the WeChat Pay
stand-in: a product added in a dialog, a paid order refunded with its ledger row."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from storage.models import LedgerReason, Order, OrderState, Product, QuotaLedger
from tests.live_server import LiveServer, start_test_server
from tests.wechatpay_server import WeChatPayStandIn, buy


@pytest.fixture
def server(  # the console's `page` logs in to this one
    tiny_model: Path, tmp_path: Path, wechatpay: WeChatPayStandIn
) -> Iterator[LiveServer]:
    server = start_test_server(tiny_model, tmp_path / "wxgpt.sqlite3", **wechatpay.settings())
    yield server
    server.stop()


async def test_add_a_product_then_refund_a_paid_order(
    page: Page, server: LiveServer, wechatpay: WeChatPayStandIn
) -> None:
    await page.get_by_test_id("menu-store").click()
    await page.get_by_test_id("product-add").click()
    await page.get_by_test_id("product-name").fill("50 次")
    await page.get_by_test_id("product-replies").locator("input").fill("50")
    await page.get_by_test_id("product-price").locator("input").fill("9.90")
    await page.get_by_test_id("product-save").click()
    products = page.get_by_test_id("products-table").locator(".el-table__body tr")
    await expect(products).to_have_count(1)
    await expect(products).to_contain_text("9.90")
    product = server.call(Product.get(name="50 次"))
    assert (product.replies, product.price_fen, product.active) == (50, 990, True)

    _, user_id, placed = buy(server, "shopper")
    number = placed["order"]["out_trade_no"]
    headers, body = wechatpay.notice(wechatpay.pay(number).transaction())
    httpx.post(server.url + "/api/pay/wechat/notify", content=body, headers=headers)
    await page.reload()
    orders = page.get_by_test_id("orders-table").locator(".el-table__body tr")
    await expect(orders).to_have_count(1)
    await expect(orders).to_contain_text("已支付")
    await page.get_by_test_id("order-refund").click()
    await page.get_by_role("button", name="确定").click()
    await expect(orders).to_contain_text("已退款")
    assert server.call(Order.get(out_trade_no=number)).state == OrderState.REFUNDED
    row = server.call(QuotaLedger.get(user_id=user_id, reason=LedgerReason.PAY_REFUND))
    assert (row.delta, row.actor) == (-50, "admin:root")
    assert len(wechatpay.orders[number].refunds) == 1

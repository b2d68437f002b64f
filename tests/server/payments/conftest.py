"""The WeChat Pay stand-in and a server selling through it."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage import payments
from tests.live_server import LiveServer
from tests.server.conftest import ServerFactory
from tests.wechatpay_server import WeChatPayStandIn

PACK_REPLIES = 30
PACK_FEN = 600


@pytest.fixture
def wechatpay(tmp_path: Path) -> Iterator[WeChatPayStandIn]:
    standin = WeChatPayStandIn(tmp_path).start()
    yield standin
    standin.stop()


@pytest.fixture
def shop(start_server: ServerFactory, wechatpay: WeChatPayStandIn) -> LiveServer:
    """A server selling one pack of 30 replies for 6 yuan through the stand-in."""
    server = start_server(**wechatpay.settings(), reconcile_after=0, reconcile_interval=3600)
    server.call(payments.create_product("30 replies", PACK_REPLIES, PACK_FEN, True))
    return server


def buy(server: LiveServer, wid: str = "buyer") -> tuple[str, int, dict[str, Any]]:
    """Log in as `wid` and order the first product; the token, user id and the answer."""
    token, user_id = server.login_user(wid)
    product = server.get("/api/pay/products", token).json()["products"][0]
    response = httpx.post(
        server.url + "/api/pay/orders",
        json={"product_id": product["id"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return token, user_id, response.json()

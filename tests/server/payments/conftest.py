"""A server selling through the WeChat Pay stand-in (the `wechatpay` fixture)."""

import pytest

from storage import payments
from tests.live_server import LiveServer
from tests.server.conftest import ServerFactory
from tests.wechatpay_server import WeChatPayStandIn

PACK_REPLIES = 30
PACK_FEN = 600


@pytest.fixture
def shop(start_server: ServerFactory, wechatpay: WeChatPayStandIn) -> LiveServer:
    """A server selling one pack of 30 replies for 6 yuan through the stand-in."""
    server = start_server(**wechatpay.settings(), reconcile_after=0, reconcile_interval=3600)
    server.call(payments.create_product("30 replies", PACK_REPLIES, PACK_FEN, True))
    return server

"""The store's endpoints: products, orders for wx.requestPayment, and WeChat Pay's notices."""

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.accounts.tokens import authenticate
from server.errors import ApiError
from server.payments.store import Store, StoreOff
from server.payments.wechatpay import NoticeRejected, WeChatPayError
from server.validation import Id, StrictModel, read_body
from server.views import order_view, product_view
from storage import payments
from storage.payments import ProductNotFound

logger = logging.getLogger(__name__)

MAX_ORDER_NUMBER = 32


class OrderBody(StrictModel):
    product_id: Id


async def products(request: Request) -> Response:
    """What is on sale; `enabled` false (with the reason) when the store is off."""
    await authenticate(request)
    store: Store = request.app.state.store
    on_sale = await payments.list_products(only_active=True) if store.enabled else []
    return JSONResponse(
        {
            "enabled": store.enabled,
            "reason": store.off_reason,
            "products": [product_view(product) for product in on_sale],
        }
    )


async def create_order(request: Request) -> Response:
    """Place an order for a product; the answer carries wx.requestPayment's parameters."""
    user = await authenticate(request)
    body = await read_body(request, OrderBody)
    store: Store = request.app.state.store
    try:
        placed = await store.place_order(user, body.product_id)
    except StoreOff as exc:
        raise ApiError(503, "unavailable", str(exc)) from None
    except ProductNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except WeChatPayError as exc:
        raise ApiError(503, "unavailable", f"{exc}; nothing was charged, try again") from None
    return JSONResponse(
        {"order": order_view(placed.order), "payment": placed.payment}, status_code=201
    )


async def get_order(request: Request) -> Response:
    """One of the user's orders, polled after paying until it is `paid`, with the quota."""
    user = await authenticate(request)
    number: str = request.path_params["out_trade_no"]
    order = None
    if len(number) <= MAX_ORDER_NUMBER:
        order = await payments.find_order(number, user_id=user.id)
    if order is None:
        raise ApiError(404, "not_found", f"order {number[:MAX_ORDER_NUMBER]} not found")
    await user.refresh_from_db(fields=["quota"])
    return JSONResponse({"order": order_view(order), "quota": user.quota})


async def wechat_notify(request: Request) -> Response:
    """WeChat Pay's notice of a payment: 204 once credited (or credited before); any failed
    check is answered with an error, which makes WeChat retry, and credits nothing."""
    store: Store = request.app.state.store
    body = await request.body()
    headers = {key.lower(): value for key, value in request.headers.items()}
    try:
        await store.handle_notice(headers, body)
    except StoreOff as exc:
        return _fail(503, str(exc))
    except NoticeRejected as exc:
        logger.warning("WeChat Pay notice refused: %s", exc)
        return _fail(400, str(exc))
    return Response(status_code=204)


def _fail(status: int, message: str) -> JSONResponse:
    # WeChat Pay's own answer shape for a notice it should send again.
    return JSONResponse({"code": "FAIL", "message": message}, status_code=status)


routes = [
    Route("/api/pay/products", products, methods=["GET"]),
    Route("/api/pay/orders", create_order, methods=["POST"]),
    Route("/api/pay/orders/{out_trade_no:str}", get_order, methods=["GET"]),
    Route("/api/pay/wechat/notify", wechat_notify, methods=["POST"]),
]

"""The store in the admin console: products, orders, and refunds of paid orders."""

from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.admin.api import page_of, paged
from server.admin.auth import AdminUser, admin_route
from server.errors import ApiError
from server.payments.store import Store, StoreOff
from server.payments.wechatpay import WeChatPayError
from server.validation import ID_MAX, StrictModel, path_id, query_int, query_text, read_body
from server.views import admin_order_view, product_view
from storage import audit, payments
from storage.models import OrderState
from storage.payments import OrderNotFound, OrderNotRefundable, ProductNotFound

MAX_REPLIES = 1_000_000
# 100,000 yuan: far above any quota pack, far below what a 32-bit column holds.
MAX_PRICE_FEN = 10_000_000


class ProductBody(StrictModel):
    name: str = Field(min_length=1, max_length=64)
    replies: int = Field(ge=1, le=MAX_REPLIES)
    price_fen: int = Field(ge=1, le=MAX_PRICE_FEN)
    active: bool = True


class ProductChanges(StrictModel):
    name: str | None = Field(None, min_length=1, max_length=64)
    replies: int | None = Field(None, ge=1, le=MAX_REPLIES)
    price_fen: int | None = Field(None, ge=1, le=MAX_PRICE_FEN)
    active: bool | None = None


async def list_products(request: Request, admin: AdminUser) -> Response:
    products = await payments.list_products(only_active=False)
    return JSONResponse({"items": [product_view(product) for product in products]})


async def create_product(request: Request, admin: AdminUser) -> Response:
    body = await read_body(request, ProductBody)
    product = await payments.create_product(body.name, body.replies, body.price_fen, body.active)
    await audit.record(admin.username, "product.create", f"product:{product.id}", body.model_dump())
    return JSONResponse(product_view(product), status_code=201)


async def update_product(request: Request, admin: AdminUser) -> Response:
    product_id = path_id(request, "product_id")
    changes = (await read_body(request, ProductChanges)).model_dump(exclude_none=True)
    try:
        product = await payments.update_product(product_id, changes)
    except ProductNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    await audit.record(admin.username, "product.update", f"product:{product_id}", changes)
    return JSONResponse(product_view(product))


async def list_orders(request: Request, admin: AdminUser) -> Response:
    page, size, offset = page_of(request)
    state = _state(query_text(request, "state", 16))
    user_id = query_int(request, "user_id", None, 1, ID_MAX)
    orders, total = await payments.list_orders(state, user_id, offset=offset, limit=size)
    return paged([admin_order_view(order) for order in orders], total, page, size)


async def refund_order(request: Request, admin: AdminUser) -> Response:
    order_id = path_id(request, "order_id")
    store: Store = request.app.state.store
    try:
        order, taken = await store.refund(order_id, f"admin:{admin.username}")
    except StoreOff as exc:
        raise ApiError(503, "unavailable", str(exc)) from None
    except OrderNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except OrderNotRefundable as exc:
        raise ApiError(409, "not_refundable", str(exc)) from None
    except WeChatPayError as exc:
        raise ApiError(503, "unavailable", f"{exc}; nothing was refunded") from None
    await order.fetch_related("user")
    detail: dict[str, Any] = {"amount_fen": order.amount_fen, "replies_taken": taken}
    await audit.record(admin.username, "order.refund", f"order:{order.out_trade_no}", detail)
    return JSONResponse({**admin_order_view(order), "replies_taken": taken})


def _state(raw: str | None) -> OrderState | None:
    if raw is None:
        return None
    try:
        return OrderState(raw)
    except ValueError:
        states = ", ".join(state.value for state in OrderState)
        raise ApiError(400, "bad_request", f"state must be one of {states}") from None


routes = [
    admin_route(
        "/api/admin/products", {"GET": (list_products, False), "POST": (create_product, True)}
    ),
    admin_route("/api/admin/products/{product_id:int}", {"PATCH": (update_product, True)}),
    admin_route("/api/admin/orders", {"GET": (list_orders, False)}),
    admin_route("/api/admin/orders/{order_id:int}/refund", {"POST": (refund_order, True)}),
]

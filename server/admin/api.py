"""The admin console's API: dashboard, users and quotas, conversations, settings, audit log
(the store's part is in server/payments/admin.py)."""

from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from generation.engines import EngineHolder
from server.accounts.routes import issue_ticket
from server.admin.auth import AdminUser, admin_route
from server.chat.settings import ChatSettings, load_chat_settings, save_chat_settings
from server.config import Settings
from server.errors import ApiError
from server.security.tickets import Grant
from server.validation import (
    ID_MAX,
    StrictModel,
    describe,
    path_id,
    query_int,
    query_text,
    read_body,
    read_json,
)
from server.views import (
    admin_conversation_view,
    admin_user_view,
    audit_view,
    ledger_view,
    message_view,
)
from storage import audit, directory, exchanges, moderation, payments, quota
from storage.users import get_or_create_user

MAX_QUOTA = 1_000_000
MAX_PAGE_SIZE = 100
# The playground's chat user is the admin's own; it should not run dry while they test.
PLAYGROUND_QUOTA = 100_000


class QuotaBody(StrictModel):
    action: Literal["grant", "set"]
    amount: int
    reason: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _amount_in_range(self) -> "QuotaBody":
        low = 1 if self.action == "grant" else 0
        if not low <= self.amount <= MAX_QUOTA:
            raise ValueError(f"amount for {self.action} must be between {low} and {MAX_QUOTA}")
        return self


class BanBody(StrictModel):
    reason: str = Field("", max_length=200)


class TicketBody(StrictModel):
    socket: Literal["ops", "chat"]


def page_of(request: Request) -> tuple[int, int, int]:
    """The page, page size and offset a list request asks for."""
    page = query_int(request, "page", 1, 1, 10**6) or 1
    size = query_int(request, "page_size", 20, 1, MAX_PAGE_SIZE) or 20
    return page, size, (page - 1) * size


def paged(items: list[dict[str, Any]], total: int, page: int, size: int) -> JSONResponse:
    """One page of a list, as every admin list answers."""
    return JSONResponse({"items": items, "total": total, "page": page, "page_size": size})


async def stats(request: Request, admin: AdminUser) -> Response:
    settings: Settings = request.app.state.settings
    now = datetime.now(UTC)
    counts = await directory.stats(now)
    revenue = await payments.revenue_per_day(now, ZoneInfo(settings.timezone))
    blocked = await moderation.blocked_per_day(now)
    holder: EngineHolder = request.app.state.engine
    engine = holder.engine
    health = holder.health()
    status = (
        "ready" if health.ready else "loading" if engine is None and not holder.error else "failed"
    )
    return JSONResponse(
        {
            "users": counts.users,
            "conversations": counts.conversations,
            "messages_today": counts.messages_today,
            "messages_7d": counts.messages_7d,
            "tokens_generated": counts.tokens_generated,
            "per_day": [{"date": day, "messages": n} for day, n in counts.per_day],
            "blocked_per_day": [{"date": day, "blocked": n} for day, n in blocked],
            # Fen taken per day in WXGPT_TIMEZONE (paid orders, refunds excluded).
            "revenue_per_day": [{"date": day, "fen": fen} for day, fen in revenue],
            "model": {
                "name": engine.info.model if engine else None,
                "device": engine.info.device if engine else None,
                "engine": holder.kind,
                "status": status,
                "error": health.reason if status == "failed" else None,
            },
        }
    )


async def list_users(request: Request, admin: AdminUser) -> Response:
    page, size, offset = page_of(request)
    q = query_text(request, "q") or ""
    rows, total = await directory.list_users(q, offset=offset, limit=size)
    return paged([admin_user_view(r.user, r.message_count) for r in rows], total, page, size)


async def _user_response(user_id: int) -> JSONResponse:
    row = await directory.get_user_row(user_id)
    return JSONResponse(admin_user_view(row.user, row.message_count))


async def get_user(request: Request, admin: AdminUser) -> Response:
    return await _user_response(path_id(request, "user_id"))


async def delete_user(request: Request, admin: AdminUser) -> Response:
    user_id = path_id(request, "user_id")
    row = await directory.get_user_row(user_id)
    await request.app.state.presence.close_user(user_id, code=4403, reason="account deleted")
    await directory.delete_user(user_id)
    await audit.record(
        admin.username, "user.delete", f"user:{user_id}", {"openid": row.user.openid}
    )
    return Response(status_code=204)


async def change_quota(request: Request, admin: AdminUser) -> Response:
    user_id = path_id(request, "user_id")
    body = await read_body(request, QuotaBody)
    user = await quota.change_quota(
        user_id, body.action, body.amount, actor=admin.username, note=body.reason
    )
    await audit.record(
        admin.username,
        f"quota.{body.action}",
        f"user:{user_id}",
        {"amount": body.amount, "reason": body.reason, "quota": user.quota},
    )
    return await _user_response(user_id)


async def ban(request: Request, admin: AdminUser) -> Response:
    user_id = path_id(request, "user_id")
    body = await read_body(request, BanBody)
    await directory.set_banned(user_id, True)
    closed = await request.app.state.presence.close_user(user_id, code=4403, reason="banned")
    await audit.record(
        admin.username, "user.ban", f"user:{user_id}", {"reason": body.reason, "sockets": closed}
    )
    return await _user_response(user_id)


async def unban(request: Request, admin: AdminUser) -> Response:
    user_id = path_id(request, "user_id")
    await directory.set_banned(user_id, False)
    await audit.record(admin.username, "user.unban", f"user:{user_id}")
    return await _user_response(user_id)


async def ledger(request: Request, admin: AdminUser) -> Response:
    user_id = path_id(request, "user_id")
    await directory.get_user_row(user_id)
    page, size, offset = page_of(request)
    entries, total = await quota.list_ledger(user_id, offset=offset, limit=size)
    return paged([ledger_view(e) for e in entries], total, page, size)


async def list_conversations(request: Request, admin: AdminUser) -> Response:
    page, size, offset = page_of(request)
    user_id = query_int(request, "user_id", None, 1, ID_MAX)
    q = query_text(request, "q") or ""
    rows, total = await directory.list_conversations(user_id, q, offset=offset, limit=size)
    items = [admin_conversation_view(r.conversation, r.user, r.message_count) for r in rows]
    return paged(items, total, page, size)


async def get_conversation(request: Request, admin: AdminUser) -> Response:
    row, messages = await directory.get_transcript(path_id(request, "conversation_id"))
    return JSONResponse(
        {
            "conversation": admin_conversation_view(row.conversation, row.user, row.message_count),
            "messages": [message_view(m, to_operator=True) for m in messages],
        }
    )


async def delete_conversation(request: Request, admin: AdminUser) -> Response:
    conversation_id = path_id(request, "conversation_id")
    if await exchanges.generating_in(conversation_id):
        raise ApiError(409, "busy", "a reply is being written in this conversation; try again")
    await directory.delete_conversation(conversation_id)
    await audit.record(admin.username, "conversation.delete", f"conversation:{conversation_id}")
    return Response(status_code=204)


def _limits() -> dict[str, dict[str, float | None]]:
    """Each setting's bounds, read from ChatSettings' own constraints."""
    limits: dict[str, dict[str, float | None]] = {}
    for name, schema in ChatSettings.model_json_schema()["properties"].items():
        bounds = next(s for s in schema.get("anyOf", [schema]) if s.get("type") != "null")
        limits[name] = {
            "min": bounds.get("minimum", bounds.get("exclusiveMinimum")),
            "max": bounds.get("maximum"),
        }
    return limits


async def _settings_response(request: Request, current: ChatSettings) -> JSONResponse:
    server_settings: Settings = request.app.state.settings
    values = current.model_dump()
    if values["default_quota"] is None:
        values["default_quota"] = server_settings.default_quota
    return JSONResponse({"values": values, "limits": _limits()})


async def get_settings(request: Request, admin: AdminUser) -> Response:
    return await _settings_response(request, await load_chat_settings())


async def put_settings(request: Request, admin: AdminUser) -> Response:
    changes = await read_json(request)
    if not isinstance(changes, dict) or not changes:
        raise ApiError(400, "invalid_setting", "send a JSON object of the settings to change")
    unknown = sorted(set(changes) - set(ChatSettings.model_fields))
    if unknown:
        known = ", ".join(ChatSettings.model_fields)
        raise ApiError(
            400, "invalid_setting", f"unknown setting(s) {', '.join(unknown)}; known: {known}"
        )
    try:
        updated = await save_chat_settings(changes)
    except ValidationError as exc:
        raise ApiError(400, "invalid_setting", describe(exc)) from None
    await audit.record(admin.username, "settings.update", "settings", changes)
    return await _settings_response(request, updated)


async def list_audit(request: Request, admin: AdminUser) -> Response:
    page, size, offset = page_of(request)
    entries, total = await audit.list_entries(
        admin=query_text(request, "admin"),
        action=query_text(request, "action"),
        target=query_text(request, "target"),
        offset=offset,
        limit=size,
    )
    return paged([audit_view(e) for e in entries], total, page, size)


async def ws_ticket(request: Request, admin: AdminUser) -> Response:
    """A single-use ticket for /ws/ops, or for /ws/chat as the playground user
    `admin:<name>` (admins only: chatting spends the model's time)."""
    body = await read_body(request, TicketBody)
    expires_at = admin.expires_at.timestamp()
    if body.socket == "ops":
        return await issue_ticket(request, Grant("ops", admin.token, expires_at))
    if not admin.can_write:
        raise ApiError(403, "forbidden", "the ops role is read-only; the playground needs an admin")
    user, _ = await get_or_create_user(
        f"admin:{admin.username}", default_quota=PLAYGROUND_QUOTA, nickname=admin.username
    )
    if user.banned:
        raise ApiError(403, "banned", f"the playground user admin:{admin.username} is banned")
    await audit.record(admin.username, "playground.ticket", f"user:{user.id}")
    return await issue_ticket(request, Grant("chat", str(user.id), expires_at))


routes = [
    admin_route("/api/admin/stats", {"GET": (stats, False)}),
    admin_route("/api/admin/users", {"GET": (list_users, False)}),
    admin_route(
        "/api/admin/users/{user_id:int}", {"GET": (get_user, False), "DELETE": (delete_user, True)}
    ),
    admin_route("/api/admin/users/{user_id:int}/quota", {"POST": (change_quota, True)}),
    admin_route("/api/admin/users/{user_id:int}/ban", {"POST": (ban, True)}),
    admin_route("/api/admin/users/{user_id:int}/unban", {"POST": (unban, True)}),
    admin_route("/api/admin/users/{user_id:int}/ledger", {"GET": (ledger, False)}),
    admin_route("/api/admin/conversations", {"GET": (list_conversations, False)}),
    admin_route(
        "/api/admin/conversations/{conversation_id:int}",
        {"GET": (get_conversation, False), "DELETE": (delete_conversation, True)},
    ),
    admin_route("/api/admin/settings", {"GET": (get_settings, False), "PUT": (put_settings, True)}),
    admin_route("/api/admin/audit", {"GET": (list_audit, False)}),
    admin_route("/api/admin/ws-ticket", {"POST": (ws_ticket, False)}),
]

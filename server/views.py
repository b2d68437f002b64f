"""How stored rows look on the wire."""

from datetime import datetime
from typing import Any

from storage.models import (
    AuditEntry,
    Conversation,
    Message,
    MessageStatus,
    ModerationCase,
    Order,
    Product,
    QuotaLedger,
    User,
)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def avatar_url(user: User) -> str | None:
    """Where the user's avatar is served, changing with each upload; None without one."""
    return f"/api/avatars/{user.id}?v={user.avatar_version}" if user.avatar_version else None


def user_view(user: User) -> dict[str, Any]:
    """A user as the client sees themself."""
    return {
        "id": user.id,
        "nickname": user.nickname,
        "avatar_url": avatar_url(user),
        "quota": user.quota,
        "created_at": _time(user.created_at),
    }


def conversation_view(conversation: Conversation) -> dict[str, Any]:
    """A conversation in a list."""
    return {
        "id": conversation.id,
        "title": conversation.title,
        "created_at": _time(conversation.created_at),
        "updated_at": _time(conversation.updated_at),
    }


def message_view(message: Message, *, to_operator: bool = False) -> dict[str, Any]:
    """One stored message with its status, token counts and timings; a blocked reply's
    text is shown to operators only."""
    hidden = message.status == MessageStatus.BLOCKED and not to_operator
    return {
        "id": message.id,
        "role": str(message.role.value),
        "content": "" if hidden else message.content,
        "status": str(message.status.value),
        "finish_reason": message.finish_reason,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "first_token_ms": message.first_token_ms,
        "duration_ms": message.duration_ms,
        "created_at": _time(message.created_at),
    }


def admin_user_view(user: User, message_count: int) -> dict[str, Any]:
    """A user as the admin console lists them."""
    return {
        "id": user.id,
        "openid": user.openid,
        "nickname": user.nickname,
        "avatar_url": avatar_url(user),
        "quota": user.quota,
        "banned": user.banned,
        "created_at": _time(user.created_at),
        "last_seen_at": _time(user.last_seen_at),
        "message_count": message_count,
    }


def admin_conversation_view(
    conversation: Conversation, user: User, message_count: int
) -> dict[str, Any]:
    """Anyone's conversation, with its owner, as the admin console lists it."""
    return {
        **conversation_view(conversation),
        "user": {
            "id": user.id,
            "openid": user.openid,
            "nickname": user.nickname,
            "avatar_url": avatar_url(user),
        },
        "message_count": message_count,
    }


def ledger_view(entry: QuotaLedger) -> dict[str, Any]:
    """One quota change."""
    return {
        "id": entry.id,
        "delta": entry.delta,
        "reason": str(entry.reason.value),
        "actor": entry.actor,
        "note": entry.note,
        "created_at": _time(entry.created_at),
    }


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    """One admin action."""
    return {
        "id": entry.id,
        "admin": entry.admin,
        "action": entry.action,
        "target": entry.target,
        "detail": entry.detail,
        "created_at": _time(entry.created_at),
    }


def case_view(case: ModerationCase) -> dict[str, Any]:
    """A moderation case with its user and, if any, the message it is about."""
    user: User = case.user
    message: Message | None = case.message
    return {
        "id": case.id,
        "kind": str(case.kind.value),
        "user": {
            "id": user.id,
            "openid": user.openid,
            "nickname": user.nickname,
            "avatar_url": avatar_url(user),
            "banned": user.banned,
        },
        "conversation_id": case.conversation_id,
        "message": None if message is None else message_view(message, to_operator=True),
        "content": case.content,
        "checker": case.checker,
        "verdict": case.verdict,
        "label": case.label,
        "note": case.note,
        "state": str(case.state.value),
        "resolved_by": case.resolved_by,
        "resolved_at": _time(case.resolved_at),
        "created_at": _time(case.created_at),
    }


def product_view(product: Product) -> dict[str, Any]:
    """A quota pack in the store."""
    return {
        "id": product.id,
        "name": product.name,
        "replies": product.replies,
        "price_fen": product.price_fen,
        "active": product.active,
    }


def order_view(order: Order) -> dict[str, Any]:
    """An order as its buyer sees it."""
    return {
        "out_trade_no": order.out_trade_no,
        "product_name": order.product_name,
        "replies": order.replies,
        "amount_fen": order.amount_fen,
        "state": str(order.state.value),
        "created_at": _time(order.created_at),
        "paid_at": _time(order.paid_at),
    }


def admin_order_view(order: Order) -> dict[str, Any]:
    """An order with its buyer and every time, as the admin console lists it."""
    user = order.user
    return {
        **order_view(order),
        "id": order.id,
        "transaction_id": order.transaction_id,
        "user": None if user is None else {"id": user.id, "nickname": user.nickname},
        "expires_at": _time(order.expires_at),
        "closed_at": _time(order.closed_at),
        "refunded_at": _time(order.refunded_at),
    }

"""How stored rows look on the wire."""

from datetime import datetime
from typing import Any

from storage.models import Conversation, Message, User


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def user_view(user: User) -> dict[str, Any]:
    """A user as the client sees themself."""
    return {
        "id": user.id,
        "nickname": user.nickname,
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


def message_view(message: Message) -> dict[str, Any]:
    """One stored message with its status, token counts and timings."""
    return {
        "id": message.id,
        "role": str(message.role.value),
        "content": message.content,
        "status": str(message.status.value),
        "finish_reason": message.finish_reason,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "first_token_ms": message.first_token_ms,
        "duration_ms": message.duration_ms,
        "created_at": _time(message.created_at),
    }

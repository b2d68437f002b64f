"""A user's conversations and messages, for the API and for chat memory."""

from tortoise.expressions import Q

from storage.errors import ConversationNotFound
from storage.models import Conversation, Message, MessageStatus, Role

_SHOWN_IN_MEMORY = (MessageStatus.COMPLETE, MessageStatus.STOPPED, MessageStatus.INTERRUPTED)


async def list_conversations(
    user_id: int, *, offset: int, limit: int
) -> tuple[list[Conversation], int]:
    """A page of the user's conversations, most recently active first, and the total."""
    query = Conversation.filter(user_id=user_id)
    total = await query.count()
    page = await query.order_by("-updated_at", "-id").offset(offset).limit(limit)
    return list(page), total


async def get_conversation(user_id: int, conversation_id: int) -> Conversation:
    """The user's conversation; raises ConversationNotFound for anyone else's."""
    conversation = await Conversation.get_or_none(id=conversation_id, user_id=user_id)
    if conversation is None:
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    return conversation


async def list_messages(
    user_id: int, conversation_id: int, *, before_id: int | None, limit: int
) -> tuple[list[Message], bool]:
    """The newest `limit` messages older than `before_id`, oldest first, and whether more exist."""
    await get_conversation(user_id, conversation_id)
    query = Message.filter(conversation_id=conversation_id)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    newest = list(await query.order_by("-id").limit(limit + 1))
    return list(reversed(newest[:limit])), len(newest) > limit


async def rename_conversation(user_id: int, conversation_id: int, title: str) -> Conversation:
    """Give the conversation a new title."""
    conversation = await get_conversation(user_id, conversation_id)
    conversation.title = title
    await conversation.save(update_fields=["title"])
    return conversation


async def delete_conversation(user_id: int, conversation_id: int) -> None:
    """Delete the conversation and its messages; ledger rows stay (their message link empties)."""
    conversation = await get_conversation(user_id, conversation_id)
    await conversation.delete()


async def load_history(conversation_id: int, *, max_turns: int) -> list[tuple[str, str]]:
    """(role, content) of the newest `max_turns` messages worth remembering, oldest first.

    Replies that failed, are still being written, or are empty are left out; stopped and
    interrupted ones stay, since the user saw them.
    """
    if max_turns <= 0:
        return []
    remembered = Q(role=Role.USER) | Q(status__in=_SHOWN_IN_MEMORY, content__not="")
    rows = (
        await Message.filter(remembered, conversation_id=conversation_id)
        .order_by("-id")
        .limit(max_turns)
        .values_list("role", "content")
    )
    return [(str(role), str(content)) for role, content in reversed(rows)]

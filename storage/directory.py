"""Everyone's users and conversations, as the admin console browses and prunes them."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Q
from tortoise.functions import Count, Sum

from storage.errors import ConversationNotFound, UserNotFound
from storage.models import Conversation, Message, Role, User


@dataclass(frozen=True)
class UserRow:
    """A user with how many messages they have sent."""

    user: User
    message_count: int


@dataclass(frozen=True)
class ConversationRow:
    """A conversation with its owner and how many messages it holds."""

    conversation: Conversation
    user: User
    message_count: int


@dataclass(frozen=True)
class Stats:
    """The dashboard's counts; `per_day` is (date, user messages) oldest first."""

    users: int
    conversations: int
    messages_today: int
    messages_7d: int
    tokens_generated: int
    per_day: list[tuple[str, int]]


def _sent_messages() -> Count:
    return Count("conversations__messages", _filter=Q(conversations__messages__role=Role.USER))


async def list_users(q: str, *, offset: int, limit: int) -> tuple[list[UserRow], int]:
    """A page of users, newest first, whose openid or nickname contains `q`."""
    query = User.all()
    if q:
        query = query.filter(Q(openid__icontains=q) | Q(nickname__icontains=q))
    total = await query.count()
    users = await (
        query.annotate(message_count=_sent_messages()).order_by("-id").offset(offset).limit(limit)
    )
    return [UserRow(user, user.message_count) for user in users], total  # type: ignore[attr-defined]


async def get_user_row(user_id: int) -> UserRow:
    """One user with their message count; raises UserNotFound."""
    user = await User.filter(id=user_id).annotate(message_count=_sent_messages()).first()
    if user is None:
        raise UserNotFound(user_id)
    return UserRow(user, user.message_count)  # type: ignore[attr-defined]


async def set_banned(user_id: int, banned: bool) -> None:
    """Ban or unban the user; raises UserNotFound."""
    if not await User.filter(id=user_id).update(banned=banned):
        raise UserNotFound(user_id)


async def delete_user(user_id: int) -> None:
    """Delete the user with their conversations, messages and ledger; raises UserNotFound."""
    if not await User.filter(id=user_id).delete():
        raise UserNotFound(user_id)


async def list_conversations(
    user_id: int | None, q: str, *, offset: int, limit: int
) -> tuple[list[ConversationRow], int]:
    """A page of anyone's conversations, most recently active first, filtered by owner/title."""
    query = Conversation.all()
    if user_id is not None:
        query = query.filter(user_id=user_id)
    if q:
        query = query.filter(title__icontains=q)
    total = await query.count()
    found = await (
        query.annotate(message_count=Count("messages"))
        .prefetch_related("user")
        .order_by("-updated_at", "-id")
        .offset(offset)
        .limit(limit)
    )
    rows = [ConversationRow(c, c.user, c.message_count) for c in found]  # type: ignore[attr-defined]
    return rows, total


async def get_transcript(conversation_id: int) -> tuple[ConversationRow, list[Message]]:
    """The conversation and all its messages, oldest first; raises ConversationNotFound."""
    conversation = (
        await Conversation.filter(id=conversation_id)
        .annotate(message_count=Count("messages"))
        .prefetch_related("user")
        .first()
    )
    if conversation is None:
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    messages = await Message.filter(conversation_id=conversation_id).order_by("id")
    row = ConversationRow(conversation, conversation.user, conversation.message_count)  # type: ignore[attr-defined]
    return row, list(messages)


async def delete_conversation(conversation_id: int) -> None:
    """Delete anyone's conversation with its messages; raises ConversationNotFound."""
    if not await Conversation.filter(id=conversation_id).delete():
        raise ConversationNotFound(f"conversation {conversation_id} not found")


async def stats(now: datetime, days: int = 14) -> Stats:
    """Counts for the dashboard; days are UTC calendar days ending with `now`'s."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = today - timedelta(days=days - 1)
    sent = Message.filter(role=Role.USER)
    # Counted in Python from one date column: portable across SQLite and PostgreSQL, and the
    # window is bounded to `days` days of messages.
    created = await sent.filter(created_at__gte=first_day).values_list("created_at", flat=True)
    per_day = {(first_day + timedelta(days=i)).date().isoformat(): 0 for i in range(days)}
    for moment in created:
        assert isinstance(moment, datetime)
        day = moment.astimezone(UTC).date().isoformat()
        if day in per_day:
            per_day[day] += 1
    return Stats(
        users=await User.all().count(),
        conversations=await Conversation.all().count(),
        messages_today=await sent.filter(created_at__gte=today).count(),
        messages_7d=await sent.filter(created_at__gte=today - timedelta(days=6)).count(),
        tokens_generated=await _total_tokens(),
        per_day=list(per_day.items()),
    )


async def _total_tokens() -> int:
    rows = await (
        Message.filter(role=Role.ASSISTANT).annotate(total=Sum("completion_tokens")).values("total")
    )
    return int(rows[0]["total"] or 0) if rows else 0

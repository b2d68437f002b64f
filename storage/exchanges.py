"""One chat turn's writes: charge, store the question and a reply placeholder, finish, refund."""

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from storage.errors import ConversationNotFound, DuplicateClientMessage, QuotaExhausted
from storage.models import Conversation, LedgerReason, Message, MessageStatus, QuotaLedger, Role, User

TITLE_CHARS = 40


@dataclass(frozen=True)
class Exchange:
    """The rows a newly accepted chat message created."""

    conversation_id: int
    user_message_id: int
    reply_id: int
    quota_left: int
    conversation_created: bool


def title_of(content: str) -> str:
    """A conversation title from its first message: one line, at most 40 characters."""
    line = " ".join(content.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


async def begin_exchange(
    user_id: int, conversation_id: int | None, content: str, client_msg_id: str
) -> Exchange:
    """Charge one unit and store the message and an empty reply, all in one transaction.

    Raises QuotaExhausted, ConversationNotFound or DuplicateClientMessage; then nothing
    is written.
    """
    try:
        async with in_transaction():
            ledger = await QuotaLedger.create(
                user_id=user_id, delta=-1, reason=LedgerReason.CHAT, client_msg_id=client_msg_id
            )
            # One guarded UPDATE: concurrent charges can never take the quota below zero.
            charged = await User.filter(id=user_id, quota__gt=0).update(quota=F("quota") - 1)
            if not charged:
                raise QuotaExhausted()
            now = datetime.now(UTC)
            if conversation_id is None:
                conversation = await Conversation.create(user_id=user_id, title=title_of(content))
            else:
                found = await Conversation.get_or_none(id=conversation_id, user_id=user_id)
                if found is None:
                    raise ConversationNotFound()
                conversation = found
                conversation.updated_at = now
                await conversation.save(update_fields=["updated_at"])
            question = await Message.create(
                conversation=conversation, role=Role.USER, content=content, client_msg_id=client_msg_id
            )
            reply = await Message.create(
                conversation=conversation,
                role=Role.ASSISTANT,
                content="",
                status=MessageStatus.GENERATING,
                reply_to=question,
            )
            ledger.message_id = question.id
            await ledger.save(update_fields=["message_id"])
            quota = (await User.get(id=user_id)).quota
    except IntegrityError:
        raise DuplicateClientMessage() from None
    return Exchange(
        conversation_id=conversation.id,
        user_message_id=question.id,
        reply_id=reply.id,
        quota_left=quota,
        conversation_created=conversation_id is None,
    )


async def finish_reply(
    reply_id: int,
    *,
    content: str,
    status: MessageStatus,
    finish_reason: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    first_token_ms: int | None,
    duration_ms: int | None,
) -> None:
    """Store how a reply ended, and bump its conversation to the top of the list."""
    async with in_transaction():
        await Message.filter(id=reply_id).update(
            content=content,
            status=status,
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            first_token_ms=first_token_ms,
            duration_ms=duration_ms,
        )
        reply = await Message.get(id=reply_id)
        await Conversation.filter(id=reply.conversation_id).update(updated_at=datetime.now(UTC))


async def refund(user_id: int, client_msg_id: str, note: str) -> int | None:
    """Give back the unit charged for `client_msg_id`, once; returns the new quota or None."""
    try:
        async with in_transaction():
            await QuotaLedger.create(
                user_id=user_id, delta=1, reason=LedgerReason.REFUND, client_msg_id=client_msg_id, note=note
            )
            await User.filter(id=user_id).update(quota=F("quota") + 1)
    except IntegrityError:
        return None
    return await get_quota(user_id)


async def find_exchange(user_id: int, client_msg_id: str) -> tuple[Message, Message] | None:
    """The question sent with `client_msg_id` and its reply, if that id was seen before."""
    question = await Message.get_or_none(
        client_msg_id=client_msg_id, role=Role.USER, conversation__user_id=user_id
    )
    if question is None:
        return None
    reply = await Message.get_or_none(reply_to_id=question.id)
    return None if reply is None else (question, reply)


async def get_quota(user_id: int) -> int:
    """The user's remaining quota."""
    user = await User.get(id=user_id)
    return user.quota

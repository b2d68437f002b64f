"""One chat turn's writes: charge, store the question and a reply placeholder, finish, refund."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q, Subquery
from tortoise.transactions import in_transaction

from storage.errors import ConversationNotFound, DuplicateClientMessage, QuotaExhausted
from storage.models import (
    Conversation,
    LedgerReason,
    Message,
    MessageStatus,
    QuotaLedger,
    Role,
    User,
)
from storage.quota import FreeDay, refresh_free

TITLE_CHARS = 40


@dataclass(frozen=True)
class Exchange:
    """The rows a newly accepted chat message created."""

    conversation_id: int
    user_message_id: int
    reply_id: int
    quota_left: int
    conversation_created: bool
    free_left: int = 0


def title_of(content: str) -> str:
    """A conversation title from its first message: one line, at most 40 characters."""
    line = " ".join(content.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


@dataclass(frozen=True)
class Lease:
    """Which replica writes a reply, and until when it promises to renew that claim."""

    replica_id: str
    until: datetime

    @classmethod
    def starting_now(cls, replica_id: str, seconds: float) -> "Lease":
        """A lease of `seconds` from now."""
        return cls(replica_id, datetime.now(UTC) + timedelta(seconds=seconds))


async def begin_exchange(
    user_id: int,
    conversation_id: int | None,
    content: str,
    client_msg_id: str,
    lease: Lease | None = None,
    free: FreeDay | None = None,
) -> Exchange:
    """Charge one unit and store the message and an empty reply, all in one transaction.

    The unit is one of today's free replies while `free` leaves some, else one of the bought
    quota. A reply without a lease belongs to no replica: recover_lost_replies takes it as lost.

    Raises QuotaExhausted, ConversationNotFound or DuplicateClientMessage; then nothing
    is written.
    """
    try:
        return await _begin(user_id, conversation_id, content, client_msg_id, lease, free)
    except IntegrityError:
        # Only the ledger's unique (user, client_msg_id, reason) means a duplicate; any other
        # violation (an unknown user) is a caller's bug and propagates as it is.
        if not await _in_ledger(user_id, client_msg_id, LedgerReason.CHAT):
            raise
        found = await find_exchange(user_id, client_msg_id)
        if found is None:
            raise DuplicateClientMessage(None, None) from None
        reply = found[1]
        raise DuplicateClientMessage(reply.conversation_id, reply.id) from None


async def _begin(
    user_id: int,
    conversation_id: int | None,
    content: str,
    client_msg_id: str,
    lease: Lease | None,
    free: FreeDay | None,
) -> Exchange:
    async with in_transaction():
        # First, so that a repeated client_msg_id fails before anything else is written; on
        # PostgreSQL a concurrent twin waits here until the first one commits or rolls back.
        charge = await QuotaLedger.create(
            user_id=user_id, delta=-1, reason=LedgerReason.CHAT, client_msg_id=client_msg_id
        )
        # One guarded UPDATE per pool: concurrent charges never take either below zero.
        free_left = await refresh_free(user_id, free) if free is not None else 0
        if free_left and await User.filter(id=user_id, free_left__gt=0).update(
            free_left=F("free_left") - 1
        ):
            charge.free = True
        elif not await User.filter(id=user_id, quota__gt=0).update(quota=F("quota") - 1):
            raise QuotaExhausted(f"user {user_id} has no quota left")
        if conversation_id is None:
            conversation = await Conversation.create(user_id=user_id, title=title_of(content))
        else:
            conversation = await _touch_conversation(user_id, conversation_id)
        question = await Message.create(
            conversation=conversation, role=Role.USER, content=content, client_msg_id=client_msg_id
        )
        reply = await Message.create(
            conversation=conversation,
            role=Role.ASSISTANT,
            content="",
            status=MessageStatus.GENERATING,
            reply_to=question,
            replica_id=lease.replica_id if lease else None,
            lease_until=lease.until if lease else None,
        )
        charge.message_id = question.id
        await charge.save(update_fields=["message_id", "free"])
        user = await User.get(id=user_id)
    return Exchange(
        conversation_id=conversation.id,
        user_message_id=question.id,
        reply_id=reply.id,
        quota_left=user.quota,
        conversation_created=conversation_id is None,
        free_left=user.free_left if free is not None else 0,
    )


async def _touch_conversation(user_id: int, conversation_id: int) -> Conversation:
    conversation = await Conversation.get_or_none(id=conversation_id, user_id=user_id)
    if conversation is None:
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    conversation.updated_at = datetime.now(UTC)
    await conversation.save(update_fields=["updated_at"])
    return conversation


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
    """Store how a reply ended and move its conversation to the top of the list.

    Does nothing if the reply is gone (its conversation was deleted meanwhile).
    """
    async with in_transaction():
        await Message.filter(id=reply_id).update(
            content=content,
            status=status,
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            first_token_ms=first_token_ms,
            duration_ms=duration_ms,
            lease_until=None,
        )
        of_reply = Message.filter(id=reply_id).values("conversation_id")
        await Conversation.filter(id=Subquery(of_reply)).update(updated_at=datetime.now(UTC))


async def save_progress(reply_id: int, content: str, lease_until: datetime) -> None:
    """Store the text a running reply has so far, and renew its lease."""
    await Message.filter(id=reply_id, status=MessageStatus.GENERATING).update(
        content=content, lease_until=lease_until
    )


async def renew_leases(reply_ids: list[int], lease_until: datetime) -> None:
    """Renew the leases of running replies whose text did not change."""
    if reply_ids:
        await Message.filter(id__in=reply_ids, status=MessageStatus.GENERATING).update(
            lease_until=lease_until
        )


async def recover_lost_replies(now: datetime) -> list[int]:
    """Store running replies whose replica stopped renewing their lease as interrupted, keeping
    the text saved so far, and refund them; returns their ids.

    Safe to run on every replica at once: each reply is taken by one conditional UPDATE.
    """
    lapsed = Q(lease_until__lt=now) | Q(lease_until__isnull=True)
    candidates = await Message.filter(lapsed, role=Role.ASSISTANT, status=MessageStatus.GENERATING)
    recovered = []
    for reply in candidates:
        if await _interrupt_lost(reply, lapsed):
            recovered.append(reply.id)
    return recovered


async def _interrupt_lost(reply: Message, lapsed: Q) -> bool:
    async with in_transaction():
        taken = await Message.filter(lapsed, id=reply.id, status=MessageStatus.GENERATING).update(
            status=MessageStatus.INTERRUPTED, finish_reason="interrupted", lease_until=None
        )
        if not taken or reply.reply_to_id is None:
            return bool(taken)
        question = await Message.get_or_none(id=reply.reply_to_id)
        if question is None or question.client_msg_id is None:
            return True
        conversation = await Conversation.get(id=reply.conversation_id)
        if not await _in_ledger(conversation.user_id, question.client_msg_id, LedgerReason.REFUND):
            await _give_back(
                conversation.user_id,
                question.client_msg_id,
                "the reply was lost when its server stopped",
                message_id=question.id,
            )
    return True


async def _give_back(
    user_id: int, client_msg_id: str, note: str, message_id: int | None = None
) -> None:
    """Refund the unit charged for `client_msg_id` to the pool it came from."""
    charge = await QuotaLedger.get_or_none(
        user_id=user_id, client_msg_id=client_msg_id, reason=LedgerReason.CHAT
    )
    free = charge is not None and charge.free
    await QuotaLedger.create(
        user_id=user_id,
        delta=1,
        reason=LedgerReason.REFUND,
        client_msg_id=client_msg_id,
        message_id=message_id,
        note=note,
        free=free,
    )
    column = "free_left" if free else "quota"
    await User.filter(id=user_id).update(**{column: F(column) + 1})


async def generating_in(conversation_id: int) -> bool:
    """Whether a reply is being written in the conversation now, on any replica."""
    return await Message.exists(
        conversation_id=conversation_id, role=Role.ASSISTANT, status=MessageStatus.GENERATING
    )


async def refund(user_id: int, client_msg_id: str, note: str) -> int | None:
    """Give back the unit charged for `client_msg_id` to its pool, once; returns the new
    bought quota, or None when it was given back before."""
    try:
        async with in_transaction():
            await _give_back(user_id, client_msg_id, note)
            user = await User.get(id=user_id)
    except IntegrityError:
        if await _in_ledger(user_id, client_msg_id, LedgerReason.REFUND):
            return None
        raise
    return user.quota


async def find_exchange(user_id: int, client_msg_id: str) -> tuple[Message, Message] | None:
    """The question sent with `client_msg_id` and its reply, if both still exist."""
    charge = await QuotaLedger.get_or_none(
        user_id=user_id, client_msg_id=client_msg_id, reason=LedgerReason.CHAT
    )
    if charge is None or charge.message_id is None:
        return None
    question = await Message.get_or_none(id=charge.message_id)
    reply = await Message.get_or_none(reply_to_id=charge.message_id)
    return None if question is None or reply is None else (question, reply)


async def find_reply(user_id: int, message_id: int) -> Message | None:
    """The assistant reply `message_id` if it is in one of the user's conversations."""
    return await Message.get_or_none(
        id=message_id, role=Role.ASSISTANT, conversation__user_id=user_id
    )


async def get_quota(user_id: int) -> int:
    """The user's remaining quota."""
    user = await User.get(id=user_id)
    return user.quota


async def get_balance(user_id: int, free: FreeDay) -> tuple[int, int]:
    """The user's bought quota and free replies left today."""
    user = await User.get(id=user_id)
    return user.quota, free.left(user)


async def _in_ledger(user_id: int, client_msg_id: str, reason: LedgerReason) -> bool:
    return await QuotaLedger.exists(user_id=user_id, client_msg_id=client_msg_id, reason=reason)

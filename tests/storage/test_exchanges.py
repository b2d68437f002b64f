import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError

from storage.conversations import delete_conversation, get_conversation, load_history
from storage.errors import ConversationNotFound, DuplicateClientMessage, QuotaExhausted
from storage.exchanges import (
    Exchange,
    Lease,
    begin_exchange,
    find_exchange,
    find_reply,
    finish_reply,
    get_quota,
    recover_lost_replies,
    refund,
    renew_leases,
    save_progress,
    title_of,
)
from storage.models import Conversation, LedgerReason, Message, MessageStatus, QuotaLedger
from storage.users import get_or_create_user


async def new_user(name: str, quota: int) -> int:
    user, created = await get_or_create_user(f"dev:{name}", default_quota=quota)
    assert created
    return user.id


async def finish(reply_id: int, content: str, status: MessageStatus) -> None:
    await finish_reply(
        reply_id,
        content=content,
        status=status,
        finish_reason="stop" if status == MessageStatus.COMPLETE else "cancelled",
        prompt_tokens=7,
        completion_tokens=len(content.split()),
        first_token_ms=30,
        duration_ms=80,
    )


async def chat_charges(user_id: int) -> int:
    return await QuotaLedger.filter(user_id=user_id, reason=LedgerReason.CHAT).count()


async def server_connections() -> int:
    """Connections the database server holds for this database (PostgreSQL only)."""
    _, rows = await connections.get("default").execute_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
    )
    return int(rows[0]["n"])


async def test_quota_reaches_zero_exactly_under_20_concurrent_charges(db: str) -> None:
    user_id = await new_user("busy", 5)
    results = await asyncio.gather(
        *(begin_exchange(user_id, None, f"question {n}", f"msg-{n}") for n in range(20)),
        return_exceptions=True,
    )
    accepted = [r for r in results if isinstance(r, Exchange)]
    refused = [r for r in results if not isinstance(r, Exchange)]
    assert len(accepted) == 5
    assert len(refused) == 15
    assert all(isinstance(r, QuotaExhausted) for r in refused)
    assert sorted(e.quota_left for e in accepted) == [0, 1, 2, 3, 4]
    assert await get_quota(user_id) == 0
    assert await chat_charges(user_id) == 5
    # The 15 refusals left nothing half-written.
    assert await Conversation.filter(user_id=user_id).count() == 5
    assert await Message.filter(conversation__user_id=user_id).count() == 10
    if db.startswith("postgres"):
        assert await server_connections() > 1, "the charges did not run on parallel connections"


async def test_a_repeated_client_msg_id_is_charged_once(db: str) -> None:
    user_id = await new_user("retry", 10)
    first = await begin_exchange(user_id, None, "hello", "same-id")
    with pytest.raises(DuplicateClientMessage) as caught:
        await begin_exchange(user_id, first.conversation_id, "hello again", "same-id")
    assert (caught.value.conversation_id, caught.value.reply_id) == (
        first.conversation_id,
        first.reply_id,
    )
    assert await get_quota(user_id) == 9
    assert await chat_charges(user_id) == 1
    assert await Message.filter(conversation_id=first.conversation_id).count() == 2


async def test_a_repeated_client_msg_id_is_charged_once_even_concurrently(db: str) -> None:
    user_id = await new_user("double-tap", 10)
    results = await asyncio.gather(
        *(begin_exchange(user_id, None, "hello", "same-id") for _ in range(6)),
        return_exceptions=True,
    )
    accepted = [r for r in results if isinstance(r, Exchange)]
    duplicates = [r for r in results if isinstance(r, DuplicateClientMessage)]
    assert len(accepted) == 1
    assert len(duplicates) == 5
    assert {d.reply_id for d in duplicates} == {accepted[0].reply_id}
    assert await get_quota(user_id) == 9
    assert await Conversation.filter(user_id=user_id).count() == 1
    found = await find_exchange(user_id, "same-id")
    assert found is not None
    question, reply = found
    assert (question.content, question.id, reply.id) == (
        "hello",
        accepted[0].user_message_id,
        accepted[0].reply_id,
    )
    assert await find_exchange(await new_user("other", 1), "same-id") is None


async def test_a_client_msg_id_stays_spent_after_its_conversation_is_deleted(db: str) -> None:
    user_id = await new_user("forgetful", 3)
    first = await begin_exchange(user_id, None, "hello", "gone")
    await delete_conversation(user_id, first.conversation_id)
    assert await find_exchange(user_id, "gone") is None
    with pytest.raises(DuplicateClientMessage) as caught:
        await begin_exchange(user_id, None, "hello", "gone")
    assert (caught.value.conversation_id, caught.value.reply_id) == (None, None)
    assert await get_quota(user_id) == 2


async def test_an_unknown_user_is_not_mistaken_for_a_duplicate(db: str) -> None:
    with pytest.raises(IntegrityError):
        await begin_exchange(424242, None, "who am I", "u1")


async def test_an_exchange_writes_the_question_reply_and_charge(db: str) -> None:
    user_id = await new_user("writer", 3)
    text = "  Plan   a trip\nto the mountains with three friends next weekend please "
    exchange = await begin_exchange(user_id, None, text, "c1")
    assert exchange.conversation_created
    assert exchange.quota_left == 2
    conversation = await get_conversation(user_id, exchange.conversation_id)
    assert conversation.title == "Plan a trip to the mountains with three…"
    question = await Message.get(id=exchange.user_message_id)
    assert (question.role, question.status, question.content, question.client_msg_id) == (
        "user",
        MessageStatus.COMPLETE,
        text,
        "c1",
    )
    reply = await Message.get(id=exchange.reply_id)
    assert (reply.role, reply.status, reply.content, reply.reply_to_id) == (
        "assistant",
        MessageStatus.GENERATING,
        "",
        question.id,
    )
    charge = await QuotaLedger.get(user_id=user_id, reason=LedgerReason.CHAT)
    assert (charge.delta, charge.client_msg_id, charge.message_id) == (-1, "c1", question.id)

    second = await begin_exchange(user_id, exchange.conversation_id, "and then?", "c2")
    assert not second.conversation_created
    assert second.conversation_id == exchange.conversation_id
    later = await get_conversation(user_id, exchange.conversation_id)
    assert later.updated_at > conversation.updated_at
    assert later.title == conversation.title


@pytest.mark.parametrize(
    ("content", "title"),
    [
        ("hi", "hi"),
        ("  many\n\tspaces   between  ", "many spaces between"),
        ("x" * 40, "x" * 40),
        ("x" * 41, "x" * 39 + "…"),
        ("你好" * 30, "你好" * 19 + "你…"),
    ],
)
def test_title_is_one_line_of_at_most_40_characters(content: str, title: str) -> None:
    assert title_of(content) == title


async def test_a_foreign_or_missing_conversation_writes_nothing(db: str) -> None:
    owner = await new_user("owner", 3)
    intruder = await new_user("intruder", 3)
    exchange = await begin_exchange(owner, None, "mine", "o1")
    for conversation_id in (exchange.conversation_id, 424242):
        with pytest.raises(ConversationNotFound):
            await begin_exchange(intruder, conversation_id, "let me in", f"i-{conversation_id}")
    assert await get_quota(intruder) == 3
    assert await chat_charges(intruder) == 0
    assert await Message.filter(conversation_id=exchange.conversation_id).count() == 2


async def test_finish_reply_stores_the_outcome_and_bumps_the_conversation(db: str) -> None:
    user_id = await new_user("finisher", 3)
    exchange = await begin_exchange(user_id, None, "q", "f1")
    before = await get_conversation(user_id, exchange.conversation_id)
    await finish_reply(
        exchange.reply_id,
        content="an answer",
        status=MessageStatus.COMPLETE,
        finish_reason="length",
        prompt_tokens=12,
        completion_tokens=2,
        first_token_ms=40,
        duration_ms=90,
    )
    reply = await Message.get(id=exchange.reply_id)
    assert (
        reply.content,
        reply.status,
        reply.finish_reason,
        reply.prompt_tokens,
        reply.completion_tokens,
        reply.first_token_ms,
        reply.duration_ms,
    ) == ("an answer", MessageStatus.COMPLETE, "length", 12, 2, 40, 90)
    after = await get_conversation(user_id, exchange.conversation_id)
    assert after.updated_at > before.updated_at


async def test_finishing_a_reply_whose_conversation_was_deleted_does_nothing(db: str) -> None:
    user_id = await new_user("deleter", 3)
    exchange = await begin_exchange(user_id, None, "q", "d1")
    await delete_conversation(user_id, exchange.conversation_id)
    await finish(exchange.reply_id, "too late", MessageStatus.COMPLETE)
    assert await Message.filter(id=exchange.reply_id).count() == 0


async def test_memory_keeps_what_the_user_saw(db: str) -> None:
    user_id = await new_user("memory", 10)
    first = await begin_exchange(user_id, None, "q1", "m1")
    conversation_id = first.conversation_id
    await finish(first.reply_id, "a1", MessageStatus.COMPLETE)
    outcomes = [
        ("", MessageStatus.FAILED),
        ("a3 partial", MessageStatus.STOPPED),
        ("", MessageStatus.STOPPED),
        ("a5 cut off", MessageStatus.INTERRUPTED),
    ]
    for n, (content, status) in enumerate(outcomes, start=2):
        exchange = await begin_exchange(user_id, conversation_id, f"q{n}", f"m{n}")
        await finish(exchange.reply_id, content, status)
    await begin_exchange(user_id, conversation_id, "q6", "m6")  # still generating

    assert await load_history(conversation_id, max_turns=20) == [
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "q2"),
        ("user", "q3"),
        ("assistant", "a3 partial"),
        ("user", "q4"),
        ("user", "q5"),
        ("assistant", "a5 cut off"),
        ("user", "q6"),
    ]
    assert await load_history(conversation_id, max_turns=3) == [
        ("user", "q5"),
        ("assistant", "a5 cut off"),
        ("user", "q6"),
    ]
    assert await load_history(conversation_id, max_turns=0) == []


async def test_find_reply_finds_only_the_owners_assistant_replies(db: str) -> None:
    owner = await new_user("owner", 3)
    other = await new_user("other", 3)
    exchange = await begin_exchange(owner, None, "hello", "r-1")
    found = await find_reply(owner, exchange.reply_id)
    assert found is not None
    assert (found.id, found.status) == (exchange.reply_id, MessageStatus.GENERATING)
    assert await find_reply(other, exchange.reply_id) is None
    assert await find_reply(owner, exchange.user_message_id) is None
    await delete_conversation(owner, exchange.conversation_id)
    assert await find_reply(owner, exchange.reply_id) is None


async def test_a_refund_is_given_once_and_recorded(db: str) -> None:
    user_id = await new_user("refunded", 2)
    exchange = await begin_exchange(user_id, None, "q", "r1")
    results = await asyncio.gather(*(refund(user_id, "r1", "generation failed") for _ in range(4)))
    assert sorted(results, key=str) == [2, None, None, None]
    assert await refund(user_id, "r1", "generation failed") is None
    assert await get_quota(user_id) == 2
    rows = await QuotaLedger.filter(user_id=user_id).order_by("id")
    assert [(r.reason, r.delta, r.client_msg_id) for r in rows] == [
        (LedgerReason.SIGNUP, 2, None),
        (LedgerReason.CHAT, -1, "r1"),
        (LedgerReason.REFUND, 1, "r1"),
    ]
    assert rows[2].note == "generation failed"
    # The refunded client_msg_id is still spent: a retry is a duplicate, not a new charge.
    with pytest.raises(DuplicateClientMessage) as caught:
        await begin_exchange(user_id, None, "q", "r1")
    assert caught.value.reply_id == exchange.reply_id


async def test_recovery_takes_only_replies_whose_lease_lapsed_and_refunds_them(db: str) -> None:
    user_id = await new_user("crashed", 3)
    now = datetime.now(UTC)
    done = await begin_exchange(user_id, None, "q1", "x1", Lease("a", now - timedelta(hours=1)))
    await finish(done.reply_id, "a1", MessageStatus.COMPLETE)
    lost = await begin_exchange(
        user_id, done.conversation_id, "q2", "x2", Lease("gone", now - timedelta(seconds=1))
    )
    await save_progress(lost.reply_id, "half a rep", now - timedelta(seconds=1))
    alive = await begin_exchange(
        user_id, done.conversation_id, "q3", "x3", Lease("alive", now + timedelta(seconds=30))
    )
    assert await get_quota(user_id) == 0

    assert await recover_lost_replies(now) == [lost.reply_id]
    reply = await Message.get(id=lost.reply_id)
    assert (reply.status, reply.finish_reason, reply.content) == (
        MessageStatus.INTERRUPTED,
        "interrupted",
        "half a rep",
    )
    assert (await Message.get(id=alive.reply_id)).status == MessageStatus.GENERATING
    assert (await Message.get(id=done.reply_id)).status == MessageStatus.COMPLETE
    assert await get_quota(user_id) == 1, "the lost reply's unit came back"
    assert await recover_lost_replies(now) == [], "taken once"
    ledger = await QuotaLedger.filter(user_id=user_id, client_msg_id="x2").order_by("id")
    assert [(row.reason, row.delta) for row in ledger] == [
        (LedgerReason.CHAT, -1),
        (LedgerReason.REFUND, 1),
    ]

    await renew_leases([alive.reply_id], now - timedelta(seconds=1))
    assert await recover_lost_replies(now) == [alive.reply_id], "a lease not renewed lapses"


async def test_recovery_on_several_replicas_at_once_refunds_once(db: str) -> None:
    user_id = await new_user("raced", 1)
    now = datetime.now(UTC)
    lost = await begin_exchange(user_id, None, "q", "r", Lease("gone", now - timedelta(seconds=1)))
    results = await asyncio.gather(*(recover_lost_replies(now) for _ in range(8)))
    assert [reply for found in results for reply in found] == [lost.reply_id]
    assert await get_quota(user_id) == 1

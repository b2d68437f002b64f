import pytest

from storage.conversations import (
    delete_conversation,
    get_conversation,
    list_conversations,
    list_messages,
    rename_conversation,
)
from storage.errors import ConversationNotFound
from storage.exchanges import begin_exchange
from storage.models import LedgerReason, Message, QuotaLedger
from storage.users import get_or_create_user


async def new_user(openid: str) -> int:
    user, _ = await get_or_create_user(openid, default_quota=50)
    return user.id


async def test_conversations_are_listed_by_latest_activity(db: str) -> None:
    user_id = await new_user("o-list")
    other_id = await new_user("o-other")
    ids = [
        (await begin_exchange(user_id, None, f"topic {n}", f"t{n}")).conversation_id
        for n in range(3)
    ]
    await begin_exchange(user_id, ids[0], "back to topic 0", "t0b")
    page, total = await list_conversations(user_id, offset=0, limit=2)
    assert (total, [c.id for c in page]) == (3, [ids[0], ids[2]])
    page, total = await list_conversations(user_id, offset=2, limit=2)
    assert (total, [c.id for c in page]) == (3, [ids[1]])
    assert await list_conversations(other_id, offset=0, limit=10) == ([], 0)


async def test_messages_are_paged_backwards_from_the_newest(db: str) -> None:
    user_id = await new_user("o-pages")
    conversation_id = (await begin_exchange(user_id, None, "m0", "p0")).conversation_id
    for n in range(1, 4):
        await begin_exchange(user_id, conversation_id, f"m{n}", f"p{n}")
    # Eight rows: each question followed by its (still empty) reply.
    newest, has_more = await list_messages(user_id, conversation_id, before_id=None, limit=3)
    assert [m.content for m in newest] == ["", "m3", ""]
    assert has_more
    middle, has_more = await list_messages(
        user_id, conversation_id, before_id=newest[0].id, limit=3
    )
    assert [m.content for m in middle] == ["m1", "", "m2"]
    assert has_more
    oldest, has_more = await list_messages(
        user_id, conversation_id, before_id=middle[0].id, limit=3
    )
    assert [m.content for m in oldest] == ["m0", ""]
    assert not has_more
    everything, has_more = await list_messages(user_id, conversation_id, before_id=None, limit=8)
    assert (len(everything), has_more) == (8, False)
    assert [m.id for m in everything] == sorted(m.id for m in everything)


async def test_another_users_conversation_is_not_found(db: str) -> None:
    owner_id = await new_user("o-owner")
    intruder_id = await new_user("o-intruder")
    conversation_id = (await begin_exchange(owner_id, None, "private", "v1")).conversation_id
    with pytest.raises(ConversationNotFound):
        await get_conversation(intruder_id, conversation_id)
    with pytest.raises(ConversationNotFound):
        await list_messages(intruder_id, conversation_id, before_id=None, limit=5)
    with pytest.raises(ConversationNotFound):
        await rename_conversation(intruder_id, conversation_id, "Mine now")
    with pytest.raises(ConversationNotFound):
        await delete_conversation(intruder_id, conversation_id)
    with pytest.raises(ConversationNotFound):
        await get_conversation(owner_id, 424242)
    assert (await get_conversation(owner_id, conversation_id)).title == "private"


async def test_rename_keeps_the_list_order(db: str) -> None:
    user_id = await new_user("o-rename")
    older = (await begin_exchange(user_id, None, "older", "n1")).conversation_id
    newer = (await begin_exchange(user_id, None, "newer", "n2")).conversation_id
    renamed = await rename_conversation(user_id, older, "Renamed")
    assert renamed.title == "Renamed"
    assert (await get_conversation(user_id, older)).title == "Renamed"
    page, _ = await list_conversations(user_id, offset=0, limit=10)
    assert [c.id for c in page] == [newer, older]


async def test_delete_takes_the_messages_and_keeps_the_ledger(db: str) -> None:
    user_id = await new_user("o-delete")
    doomed = await begin_exchange(user_id, None, "doomed", "d1")
    kept = await begin_exchange(user_id, None, "kept", "d2")
    await delete_conversation(user_id, doomed.conversation_id)
    with pytest.raises(ConversationNotFound):
        await get_conversation(user_id, doomed.conversation_id)
    assert await Message.filter(conversation_id=doomed.conversation_id).count() == 0
    assert await Message.filter(conversation_id=kept.conversation_id).count() == 2
    charges = await QuotaLedger.filter(user_id=user_id, reason=LedgerReason.CHAT).order_by("id")
    assert [(c.client_msg_id, c.message_id) for c in charges] == [
        ("d1", None),
        ("d2", kept.user_message_id),
    ]

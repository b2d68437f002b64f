"""Admin accounts, sessions, quota changes, the admin's views of everyone's data and the
audit log, on SQLite and PostgreSQL."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from storage import admins, audit, directory, quota
from storage.errors import AdminExists, ConversationNotFound, UserNotFound
from storage.exchanges import begin_exchange, finish_reply
from storage.models import Admin, AdminRole, MessageStatus, QuotaLedger, User
from storage.users import get_or_create_user


async def test_passwords_are_hashed_and_checked(db: str) -> None:
    admin = await admins.create_admin("root", "s3cret-pass", AdminRole.ADMIN)
    assert admin.password_hash.startswith("$argon2id$")
    assert "s3cret-pass" not in admin.password_hash
    assert await admins.check_password("root", "wrong") is None
    assert await admins.check_password("nobody", "s3cret-pass") is None
    found = await admins.check_password("root", "s3cret-pass")
    assert found is not None and found.id == admin.id
    with pytest.raises(AdminExists):
        await admins.create_admin("root", "other-pass", AdminRole.OPS)


async def test_sessions_expire_and_close(db: str) -> None:
    admin = await admins.create_admin("ops1", "password1", AdminRole.OPS)
    token, expires_at = await admins.open_session(admin, timedelta(hours=1))
    assert expires_at > datetime.now(UTC)
    session_admin = await admins.session_admin(token)
    assert session_admin is not None and session_admin.role == AdminRole.OPS
    assert (await Admin.get(id=admin.id)).last_login_at is not None
    short, _ = await admins.open_session(admin, timedelta(seconds=-1))
    assert await admins.session_admin(short) is None, "an expired session opens nothing"
    await admins.close_session(token)
    assert await admins.session_admin(token) is None


async def test_concurrent_grants_all_count_and_the_ledger_adds_up(db: str) -> None:
    user, _ = await get_or_create_user("o-q", default_quota=10)
    await asyncio.gather(
        *(quota.change_quota(user.id, "grant", 3, actor="root", note="n") for _ in range(8))
    )
    final = await quota.change_quota(user.id, "set", 5, actor="root", note="reset")
    assert final.quota == 5
    deltas = await QuotaLedger.filter(user_id=user.id).values_list("delta", flat=True)
    assert sum(deltas) == 5
    entries, total = await quota.list_ledger(user.id, offset=0, limit=2)
    assert total == 10
    assert [(e.delta, e.note) for e in entries] == [(5 - 34, "reset"), (3, "n")]
    with pytest.raises(UserNotFound):
        await quota.change_quota(999999, "grant", 1, actor="root", note="n")


async def test_directory_lists_counts_and_deletes(db: str) -> None:
    ann, _ = await get_or_create_user("o-ann", default_quota=5, nickname="Ann")
    await get_or_create_user("o-bob", default_quota=5, nickname="Bob")
    exchange = await begin_exchange(ann.id, None, "hello world", "m1")
    await finish_reply(
        exchange.reply_id,
        content="hi",
        status=MessageStatus.COMPLETE,
        finish_reason="stop",
        prompt_tokens=4,
        completion_tokens=9,
        first_token_ms=10,
        duration_ms=20,
    )
    rows, total = await directory.list_users("ann", offset=0, limit=10)
    assert total == 1 and rows[0].message_count == 1
    conversations, total = await directory.list_conversations(None, "hello", offset=0, limit=10)
    assert total == 1 and conversations[0].user.id == ann.id
    assert conversations[0].message_count == 2
    row, messages = await directory.get_transcript(exchange.conversation_id)
    assert row.message_count == 2
    assert [m.content for m in messages] == ["hello world", "hi"]
    stats = await directory.stats(datetime.now(UTC))
    assert (stats.users, stats.conversations, stats.messages_today) == (2, 1, 1)
    assert (stats.tokens_generated, stats.per_day[-1][1]) == (9, 1)
    await directory.set_banned(ann.id, True)
    assert (await User.get(id=ann.id)).banned
    await directory.delete_user(ann.id)
    with pytest.raises(ConversationNotFound):
        await directory.get_transcript(exchange.conversation_id)
    assert await QuotaLedger.filter(user_id=ann.id).count() == 0
    with pytest.raises(UserNotFound):
        await directory.delete_user(ann.id)


async def test_audit_entries_filter_by_admin_action_and_target(db: str) -> None:
    await audit.record("root", "quota.grant", "user:1", {"amount": 2})
    await audit.record("root", "user.ban", "user:2")
    await audit.record("carol", "quota.set", "user:2")
    entries, total = await audit.list_entries(
        admin=None, action="quota", target=None, offset=0, limit=10
    )
    assert (total, [e.action for e in entries]) == (2, ["quota.set", "quota.grant"])
    entries, total = await audit.list_entries(
        admin="root", action=None, target="user:2", offset=0, limit=10
    )
    assert [e.action for e in entries] == ["user.ban"]
    assert entries[0].detail == {}

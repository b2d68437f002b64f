"""The schema: users, conversations, messages, the quota ledger, settings, admin accounts, and
moderation (cases to review, avatars)."""

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model
from tortoise.validators import MinValueValidator


class Role(StrEnum):
    """Who wrote a message."""

    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    """Where a message stands; user messages are always `complete`."""

    GENERATING = "generating"
    COMPLETE = "complete"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    # Stopped by the content checks: never shown again to the user, never part of memory.
    BLOCKED = "blocked"


class LedgerReason(StrEnum):
    """Why a user's quota changed."""

    SIGNUP = "signup"
    CHAT = "chat"
    REFUND = "refund"
    GRANT = "grant"
    SET = "set"


class User(Model):
    """A WeChat user (openid), or `dev:<wid>` for development logins."""

    id = fields.IntField(primary_key=True)
    openid = fields.CharField(max_length=128, unique=True)
    nickname = fields.CharField(max_length=64, default="")
    quota = fields.IntField(default=0, validators=[MinValueValidator(0)])
    banned = fields.BooleanField(default=False)
    # Bumped with each uploaded avatar (0: none), so its URL changes and caches refresh.
    avatar_version = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField(null=True)

    class Meta:
        table = "users"


class Conversation(Model):
    """A user's conversation; titled after its first message."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="conversations", on_delete=fields.CASCADE
    )
    title = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Bumped explicitly on activity, so that a rename does not reorder the list.
    updated_at = fields.DatetimeField(auto_now_add=True)

    user_id: int

    class Meta:
        table = "conversations"
        # Serves "this user's conversations, newest activity first" from the index alone.
        indexes = (("user", "updated_at"),)


class Message(Model):
    """One message; an assistant reply records how it ended, its tokens and timings."""

    id = fields.IntField(primary_key=True)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="messages", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(Role, max_length=16)
    content = fields.TextField()
    status = fields.CharEnumField(MessageStatus, max_length=16, default=MessageStatus.COMPLETE)
    client_msg_id = fields.CharField(max_length=64, null=True)
    reply_to: fields.ForeignKeyNullableRelation["Message"] = fields.ForeignKeyField(
        "models.Message", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    finish_reason = fields.CharField(max_length=16, null=True)
    prompt_tokens = fields.IntField(default=0)
    completion_tokens = fields.IntField(default=0)
    first_token_ms = fields.IntField(null=True)
    duration_ms = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # While a reply is generating: the replica writing it, and until when that replica has
    # promised to have renewed its lease. A reply whose lease lapsed was lost by a crash.
    replica_id = fields.CharField(max_length=32, null=True)
    lease_until = fields.DatetimeField(null=True)

    conversation_id: int
    reply_to_id: int | None

    class Meta:
        table = "messages"
        # A conversation's messages are paged by id; replies are found from their question;
        # the sweep for lost replies looks up generating ones by lease.
        indexes = (("conversation", "id"), ("reply_to",), ("status", "lease_until"))


class QuotaLedger(Model):
    """Every change of a user's quota; unique per (user, client_msg_id, reason)."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="ledger", on_delete=fields.CASCADE
    )
    delta = fields.IntField()
    reason = fields.CharEnumField(LedgerReason, max_length=16)
    # The unique constraint below is what charges (and refunds) a client_msg_id once,
    # even under concurrent sockets; NULLs never collide, so grants are unconstrained.
    client_msg_id = fields.CharField(max_length=64, null=True)
    message: fields.ForeignKeyNullableRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    actor = fields.CharField(max_length=64, null=True)
    note = fields.CharField(max_length=255, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    user_id: int
    message_id: int | None

    class Meta:
        table = "quota_ledger"
        unique_together = (("user", "client_msg_id", "reason"),)
        # Deleting messages nulls their ledger links; without it each delete scans the ledger.
        indexes = (("message",),)


class Setting(Model):
    """A JSON value under a key; the keys' meaning lives with their readers."""

    key = fields.CharField(max_length=64, primary_key=True)
    value: Any = fields.JSONField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "settings"


class AdminRole(StrEnum):
    """What an operator may do: `admin` everything, `ops` only look."""

    ADMIN = "admin"
    OPS = "ops"


class Admin(Model):
    """An operator account of the admin console; never a chat user."""

    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    password_hash = fields.CharField(max_length=255)
    role = fields.CharEnumField(AdminRole, max_length=16, default=AdminRole.ADMIN)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "admins"


class AdminSession(Model):
    """A logged-in admin console session; only the token's hash is kept."""

    id = fields.IntField(primary_key=True)
    admin: fields.ForeignKeyRelation[Admin] = fields.ForeignKeyField(
        "models.Admin", related_name="sessions", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()

    admin_id: int

    class Meta:
        table = "admin_sessions"


class AuditEntry(Model):
    """One admin action; the admin is kept by name so the log outlives the account."""

    id = fields.IntField(primary_key=True)
    admin = fields.CharField(max_length=64)
    action = fields.CharField(max_length=32)
    target = fields.CharField(max_length=128, default="")
    detail: Any = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "audit_log"
        indexes = (("admin", "id"), ("action", "id"))


class Avatar(Model):
    """A user's uploaded avatar image; in the database, so every replica serves it."""

    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="avatar", on_delete=fields.CASCADE, primary_key=True
    )
    content_type = fields.CharField(max_length=32)
    data = fields.BinaryField()
    updated_at = fields.DatetimeField(auto_now=True)

    user_id: int

    class Meta:
        table = "avatars"


class CaseKind(StrEnum):
    """What a moderation case is about."""

    INPUT = "input"
    OUTPUT = "output"
    PROFILE = "profile"
    REPORT = "report"


class CaseState(StrEnum):
    """Where a moderation case stands: waiting, dismissed, or its user banned."""

    OPEN = "open"
    DISMISSED = "dismissed"
    BANNED = "banned"


class ModerationCase(Model):
    """Something for an operator to review: blocked text with its verdict, or a user's report."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(CaseKind, max_length=16)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="cases", on_delete=fields.CASCADE
    )
    # The blocked or reported reply; a blocked question is never stored as a message.
    message: fields.ForeignKeyNullableRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    conversation_id = fields.IntField(null=True)
    content = fields.TextField()
    # Which check decided ("words", "wechat"), or None for a report.
    checker = fields.CharField(max_length=16, null=True)
    # "risky", "review", "unchecked" (let through while WeChat failed), or "reported".
    verdict = fields.CharField(max_length=16)
    label = fields.CharField(max_length=64, default="")
    note = fields.CharField(max_length=255, default="")
    state = fields.CharEnumField(CaseState, max_length=16, default=CaseState.OPEN)
    resolved_by = fields.CharField(max_length=64, null=True)
    resolved_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    user_id: int
    message_id: int | None

    class Meta:
        table = "moderation_cases"
        # The moderation page lists newest first, by state, by user, and counts per day.
        indexes = (("state", "id"), ("user", "id"), ("created_at",))

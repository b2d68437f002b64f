"""The schema: users, conversations, messages, the quota ledger, settings, admin accounts, and
moderation (cases to review, avatars), the store (products and orders)."""

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
    PURCHASE = "purchase"
    PAY_REFUND = "pay_refund"
    DAILY = "daily"
    INVITE = "invite"


class User(Model):
    """A WeChat user (openid), or `dev:<wid>` for development logins."""

    id = fields.IntField(primary_key=True)
    openid = fields.CharField(max_length=128, unique=True)
    nickname = fields.CharField(max_length=64, default="")
    quota = fields.IntField(default=0, validators=[MinValueValidator(0)])
    # Today's free replies, spent before `quota`; `free_day` is the local day they belong to,
    # so the first charge of a new day resets them (with a ledger row).
    free_left = fields.IntField(default=0, validators=[MinValueValidator(0)])
    free_day = fields.DateField(null=True)
    banned = fields.BooleanField(default=False)
    # Bumped with each uploaded avatar (0: none), so its URL changes and caches refresh.
    avatar_version = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField(null=True)
    # Given out on first need; a new user who logs in with it rewards both sides once.
    invite_code = fields.CharField(max_length=16, null=True, unique=True)
    # The inviter's id; a plain column, since SQLite cannot add a foreign key to a table.
    invited_by = fields.IntField(null=True)

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
    # The column comment stays as first written, before the store's reasons: SQLite cannot
    # alter a comment, so aerich cannot migrate the one Tortoise would derive from the enum.
    reason = fields.CharEnumField(
        LedgerReason,
        max_length=16,
        description="SIGNUP: signup\nCHAT: chat\nREFUND: refund\nGRANT: grant\nSET: set",
    )
    # The unique constraint below is what charges (and refunds) a client_msg_id once,
    # even under concurrent sockets; NULLs never collide, so grants are unconstrained.
    client_msg_id = fields.CharField(max_length=64, null=True)
    message: fields.ForeignKeyNullableRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    actor = fields.CharField(max_length=64, null=True)
    note = fields.CharField(max_length=255, null=True)
    # A row of the daily free replies (users.free_left) rather than of the bought quota, so
    # that each pool equals the sum of its own rows.
    free = fields.BooleanField(default=False)
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


class Product(Model):
    """A quota pack in the store: `replies` for `price_fen`, in fen (cents of a yuan)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64)
    replies = fields.IntField(validators=[MinValueValidator(1)])
    price_fen = fields.IntField(validators=[MinValueValidator(1)])
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "products"


class OrderState(StrEnum):
    """Where an order stands: paid ones credited their replies, refunded ones took them back."""

    PENDING = "pending"
    PAID = "paid"
    CLOSED = "closed"
    REFUNDED = "refunded"


class Order(Model):
    """One purchase of a product, as WeChat Pay knows it by `out_trade_no`.

    The product's name, replies and price are copied in, so that an order keeps what was
    bought when the product changes or goes; the user is kept as null when deleted, so that
    revenue stays counted.
    """

    id = fields.IntField(primary_key=True)
    out_trade_no = fields.CharField(max_length=32, unique=True)
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="orders", null=True, on_delete=fields.SET_NULL
    )
    product: fields.ForeignKeyNullableRelation[Product] = fields.ForeignKeyField(
        "models.Product", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    product_name = fields.CharField(max_length=64)
    replies = fields.IntField()
    amount_fen = fields.IntField()
    state = fields.CharEnumField(OrderState, max_length=16, default=OrderState.PENDING)
    prepay_id = fields.CharField(max_length=128, null=True)
    transaction_id = fields.CharField(max_length=64, null=True)
    out_refund_no = fields.CharField(max_length=64, null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    paid_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    refunded_at = fields.DatetimeField(null=True)

    user_id: int | None
    product_id: int | None

    class Meta:
        table = "orders"
        # Reconciliation finds pending orders by age; a user's orders are listed newest first;
        # revenue is summed by the day orders were paid.
        indexes = (("state", "created_at"), ("user", "id"), ("paid_at",))

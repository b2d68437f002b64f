"""Errors the storage package raises on purpose."""


class StorageError(Exception):
    """Base of the storage package's deliberate errors."""


class DatabaseUnavailable(StorageError):
    """The database did not answer a trivial query."""


class QuotaExhausted(StorageError):
    """The user has no quota left; nothing was written."""


class ConversationNotFound(StorageError):
    """The conversation does not exist or belongs to someone else; nothing was written."""


class DuplicateClientMessage(StorageError):
    """This client_msg_id was already charged; nothing new was written or charged.

    `conversation_id` and `reply_id` name the earlier reply, or are None once its
    conversation has been deleted.
    """

    def __init__(self, conversation_id: int | None, reply_id: int | None) -> None:
        super().__init__(f"client_msg_id already used (reply {reply_id})")
        self.conversation_id = conversation_id
        self.reply_id = reply_id


class AdminExists(StorageError):
    """An admin account with this username already exists; nothing was written."""

    def __init__(self, username: str) -> None:
        super().__init__(f"an admin named {username!r} already exists")


class UserNotFound(StorageError):
    """No user has this id; nothing was written."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} not found")
        self.user_id = user_id

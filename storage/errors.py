"""Errors the storage package raises on purpose."""


class StorageError(Exception):
    """Base of the storage package's deliberate errors."""


class QuotaExhausted(StorageError):
    """The user has no quota left; nothing was written."""


class ConversationNotFound(StorageError):
    """The conversation does not exist or belongs to someone else."""


class DuplicateClientMessage(StorageError):
    """This client_msg_id was already charged; its exchange exists."""

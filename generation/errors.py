"""Errors raised by the generation package, each naming what went wrong."""


class GenerationError(Exception):
    """Base of every error the generation package raises on purpose."""


class ModelNotFound(GenerationError):
    """The configured model could not be found where wxgpt is allowed to look."""


class QueueFull(GenerationError):
    """Every generation slot is busy and the waiting line is at its limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the server is busy: {limit} replies are already waiting; try again soon")
        self.limit = limit


class EngineClosed(GenerationError):
    """A reply was asked of an engine that was closed."""


class EngineBusy(GenerationError):
    """The inference engine turned a reply away for now (HTTP 429 or 503): the user may retry,
    after `retry_after_s` seconds where the engine said."""

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class EngineFailed(GenerationError):
    """The engine hit an error it cannot go on from; it takes no more replies until restart."""

"""What an engine is started with, as the server's settings give it (plain values: reading
the settings loads no torch; the engines themselves are in generation.engines)."""

from dataclasses import dataclass, field
from typing import Literal, Protocol

from generation.model_spec import ModelSpec

EngineKind = Literal["single", "batched", "remote"]


class EngineEvents(Protocol):
    """Told what an engine sees of its inference server or of its own failures, for /metrics
    (the server's side implements it, so the generation package imports nothing of it)."""

    def engine_error(self, kind: str) -> None:
        """One request to the inference server, or one step of a local engine, failed;
        `kind` says how."""
        ...

    def engine_request(self, first_token_s: float | None, duration_s: float | None) -> None:
        """One request ended: seconds to its first text, and in all (None: it did not end
        normally)."""
        ...


class NoEvents:
    """Events nobody listens to."""

    def engine_error(self, kind: str) -> None:
        """Ignore it."""

    def engine_request(self, first_token_s: float | None, duration_s: float | None) -> None:
        """Ignore it."""


@dataclass(frozen=True)
class RemoteSpec:
    """Where the remote engine sends generation: an OpenAI-compatible server."""

    url: str
    # Kept out of repr, so a logged config never shows it.
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    context_size: int | None = None
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 120.0
    chunk_timeout_s: float = 30.0
    health_interval_s: float = 5.0


@dataclass(frozen=True)
class EngineConfig:
    """What an engine is started with."""

    model: ModelSpec = field(default_factory=ModelSpec)
    slots: int = 1
    max_waiting: int = 32
    # Longest user message in tokens (None: only the context bounds it).
    max_message_tokens: int | None = None
    # Most prompt tokens the batched engine prefills between two decoding steps, and the
    # time a chunk should take (None: always the most).
    prefill_chunk_tokens: int = 256
    prefill_chunk_seconds: float | None = None
    remote: RemoteSpec | None = None
    events: EngineEvents = field(default_factory=NoEvents)

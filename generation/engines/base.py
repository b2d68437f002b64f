"""The seam between the reply path and whatever generates replies.

The reply path hands an engine a conversation's turns and sampling parameters; the engine
fits them to its context (tokenising is its business), streams the reply's text with a
cancel flag, reports usage and finish reason, and says whether it is healthy.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from generation.loading import ModelSpec
from generation.prompts import Turn
from generation.queue import GenerationQueue, Ticket
from generation.sampling import SamplingParams
from generation.stopping import CancelToken
from generation.streaming import GenerationResult, TextCallback


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


@dataclass(frozen=True)
class EngineInfo:
    """What the ops panel and the admin dashboard show of an engine."""

    kind: str
    model: str
    device: str
    context_size: int


@dataclass(frozen=True)
class EngineHealth:
    """Whether the engine can take replies; `reason` says why not."""

    ready: bool
    reason: str | None = None


@dataclass(frozen=True)
class PreparedReply:
    """A reply ready to generate: the newest turns that fit, their ids, and the parameters
    with `max_new_tokens` fitted to the engine's context."""

    turns: tuple[Turn, ...]
    prompt_ids: list[int]
    params: SamplingParams

    @property
    def prompt_tokens(self) -> int:
        """How many tokens the prompt is."""
        return len(self.prompt_ids)


class ReplyEngine(Protocol):
    """What the reply path needs of an engine."""

    info: EngineInfo
    queue: GenerationQueue

    async def prepare(self, turns: Sequence[Turn], params: SamplingParams) -> PreparedReply:
        """Fit the conversation (the user's message last) to the context; raises
        PromptTooLong when the message alone leaves no room for a reply."""
        ...

    def reserve(self) -> Ticket:
        """A slot or a place in line for one reply; raises QueueFull."""
        ...

    async def generate(
        self, reply: PreparedReply, cancel: CancelToken, on_text: TextCallback
    ) -> GenerationResult:
        """Generate the reply, awaiting `on_text` with each new piece of text.

        `on_text` must not raise. If this coroutine is cancelled, the generation is stopped
        and awaited before the cancellation goes on.
        """
        ...

    def health(self) -> EngineHealth:
        """Whether new replies can be generated now."""
        ...

    def close(self) -> None:
        """Stop taking work."""
        ...

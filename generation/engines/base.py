"""The seam between the reply path and whatever generates replies.

The reply path hands an engine a conversation's turns and sampling parameters; the engine
fits them to its context (tokenising is its business), streams the reply's text with a
cancel flag, reports usage and finish reason, and says whether it is healthy.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from generation.prompts import Turn
from generation.queue import GenerationQueue, Ticket
from generation.sampling import SamplingParams
from generation.stopping import CancelToken
from generation.streaming import GenerationResult, TextCallback


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

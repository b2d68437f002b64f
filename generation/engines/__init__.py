"""The engines a server can run replies on, chosen by name, and the interface they share."""

from typing import Literal, Protocol

from generation.engines.batched import BatchingEngine
from generation.engines.single import Engine
from generation.loading import LoadedModel
from generation.queue import GenerationQueue, Ticket
from generation.sampling import SamplingParams
from generation.stopping import CancelToken
from generation.streaming import GenerationResult, TextCallback

EngineKind = Literal["single", "batched"]


class ReplyEngine(Protocol):
    """What the server needs of an engine: a place in line, then a streamed reply."""

    loaded: LoadedModel
    queue: GenerationQueue

    def reserve(self) -> Ticket:
        """A slot or a place in line for one reply; raises QueueFull."""
        ...

    async def generate(
        self,
        prompt_ids: list[int],
        params: SamplingParams,
        cancel: CancelToken,
        on_text: TextCallback,
    ) -> GenerationResult:
        """Generate one reply, awaiting `on_text` with each new piece."""
        ...

    def close(self) -> None:
        """Stop taking work."""
        ...


def make_engine(
    kind: EngineKind, loaded: LoadedModel, *, slots: int, max_waiting: int
) -> ReplyEngine:
    """`single`: a thread per reply; `batched`: one thread decoding all replies together."""
    if kind == "batched":
        return BatchingEngine(loaded, slots=slots, max_waiting=max_waiting)
    return Engine(loaded, slots=slots, max_waiting=max_waiting)

"""The batching engine: one thread decodes every running reply in one forward pass per step.

Replies join between steps (continuous batching): each new prompt is prefilled on its own,
then its cache joins the left-padded batch. A finished or cancelled reply leaves at once.
"""

import asyncio
import inspect
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache, LogitsProcessorList

from generation.engines.base import EngineConfig, EngineHealth, EngineInfo, PreparedReply
from generation.engines.batch_cache import BatchCache
from generation.engines.prompting import PromptPreparer
from generation.errors import EngineClosed
from generation.loading import LoadedModel, load_model
from generation.prompts import Turn
from generation.queue import GenerationQueue, Ticket
from generation.sampling import SamplingParams
from generation.stopping import CancelToken
from generation.streaming import GenerationResult, TextCallback, TokenStream, relay

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Reply:
    """One reply in the batch: what it was asked, what it has produced, where its text goes."""

    prompt_ids: list[int]
    params: SamplingParams
    cancel: CancelToken
    stream: TokenStream
    loop: asyncio.AbstractEventLoop
    done: "asyncio.Future[list[int]]"
    processors: LogitsProcessorList
    completion: list[int] = field(default_factory=list)

    def add(self, token_id: int) -> None:
        """Record and stream one generated id: one decoding step of this reply."""
        self.completion.append(token_id)
        self.cancel.steps += 1
        self.stream.push(token_id)

    def ended(self, stop_ids: frozenset[int]) -> bool:
        """Whether the reply is over: a stop id, the length limit, or a cancel."""
        return (
            self.cancel.cancelled
            or len(self.completion) >= self.params.max_new_tokens
            or (bool(self.completion) and self.completion[-1] in stop_ids)
        )

    def finish(self, error: BaseException | None = None) -> None:
        """Hand the ids (or the error) back to the event loop."""
        self.stream.end()
        self.loop.call_soon_threadsafe(self._settle, error)

    def _settle(self, error: BaseException | None) -> None:
        if error is None:
            self.done.set_result(self.completion)
        else:
            self.done.set_exception(error)


class BatchingEngine:
    """Decodes up to `slots` replies together; more wait in line."""

    kind = "batched"

    def __init__(self, loaded: LoadedModel, *, slots: int, max_waiting: int) -> None:
        self.loaded = loaded
        self.info = EngineInfo(self.kind, loaded.name, loaded.device, loaded.context_size)
        self.queue = GenerationQueue(slots, max_waiting)
        self._prompts = PromptPreparer(loaded.prompt_format, loaded.context_size)
        self._stop_ids = frozenset(loaded.prompt_format.stop_token_ids)
        # As generate does: compute the prefill's logits for the last position only.
        forward_args = inspect.signature(loaded.model.forward).parameters
        self._prefill_kwargs: dict[str, Any] = (
            {"logits_to_keep": 1} if "logits_to_keep" in forward_args else {}
        )
        self._arrivals: queue.SimpleQueue[_Reply | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="wxgpt-batch", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, config: EngineConfig) -> "BatchingEngine":
        """Load the model and start the decoding thread (blocking; call from a worker thread)."""
        return cls(load_model(config.model), slots=config.slots, max_waiting=config.max_waiting)

    async def prepare(self, turns: Sequence[Turn], params: SamplingParams) -> PreparedReply:
        """The newest turns that fit the model's context; raises PromptTooLong."""
        return await self._prompts.prepare(turns, params)

    def reserve(self) -> Ticket:
        """A slot or a place in line for one reply; raises QueueFull."""
        return self.queue.reserve()

    async def generate(
        self, request: PreparedReply, cancel: CancelToken, on_text: TextCallback
    ) -> GenerationResult:
        """Generate one reply in the shared batch, awaiting `on_text` with each new piece.

        `on_text` must not raise. If this coroutine is cancelled, the reply leaves the batch
        and is awaited before the cancellation goes on.
        """
        if self._closed:
            raise EngineClosed("the generation engine is shut down")
        loop = asyncio.get_running_loop()
        stream = TokenStream(self.loaded.prompt_format.stream_decoder(), loop)
        reply = _Reply(
            prompt_ids=list(request.prompt_ids),
            params=request.params,
            cancel=cancel,
            stream=stream,
            loop=loop,
            done=loop.create_future(),
            processors=request.params.logits_processors(),
        )
        self._arrivals.put(reply)
        return await relay(request, cancel, on_text, stream, reply.done, self._stop_ids)

    def health(self) -> EngineHealth:
        """Ready until closed."""
        if self._closed:
            return EngineHealth(False, "the engine is shut down")
        return EngineHealth(True)

    def close(self) -> None:
        """Stop taking work; replies already in the batch run to their end."""
        self._closed = True
        self._arrivals.put(None)

    def _run(self) -> None:
        batch = BatchCache()
        running: list[_Reply] = []
        closing = False
        while not (closing and not running):
            # With nothing to decode, sleep until a reply arrives; otherwise only look.
            arrivals, closing = self._take_arrivals(wait=not running, closing=closing)
            for reply in arrivals:
                if self._prefill(reply, batch):
                    running.append(reply)
            running = self._leave_ended(running, batch)
            if running:
                running = self._step(running, batch)

    def _take_arrivals(self, *, wait: bool, closing: bool) -> tuple[list[_Reply], bool]:
        arrivals: list[_Reply] = []
        while True:
            try:
                item = self._arrivals.get(block=wait and not closing and not arrivals)
            except queue.Empty:
                return arrivals, closing
            if item is None:
                closing = True
            else:
                arrivals.append(item)

    @torch.no_grad()
    def _prefill(self, reply: _Reply, batch: BatchCache) -> bool:
        """Run the prompt, take the first token and join the batch; False if already over."""
        if reply.cancel.cancelled:
            reply.finish()
            return False
        model = self.loaded.model
        ids = torch.tensor([reply.prompt_ids], dtype=torch.long, device=self.loaded.device)
        cache = DynamicCache(config=model.config)
        try:
            output = model(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                past_key_values=cache,
                use_cache=True,
                **self._prefill_kwargs,
            )
            logits = output.logits[:, -1].to(dtype=torch.float32)
            reply.add(reply.params.pick(reply.processors, reply.prompt_ids, logits))
            if reply.ended(self._stop_ids):
                reply.finish()
                return False
            batch.join(cache)
        except Exception as exc:
            logger.exception("prefill of a %d-token prompt failed", len(reply.prompt_ids))
            reply.finish(exc)
            return False
        return True

    def _leave_ended(self, running: list[_Reply], batch: BatchCache) -> list[_Reply]:
        """Finish replies that are over (a cancel may have come during the last step)."""
        staying = [row for row, reply in enumerate(running) if not reply.ended(self._stop_ids)]
        if len(staying) == len(running):
            return running
        for row, reply in enumerate(running):
            if row not in staying:
                reply.finish()
        batch.keep(staying)
        return [running[row] for row in staying]

    @torch.no_grad()
    def _step(self, running: list[_Reply], batch: BatchCache) -> list[_Reply]:
        try:
            logits = batch.step(self.loaded.model, [reply.completion[-1] for reply in running])
        except Exception as exc:
            logger.exception("a decoding step of %d replies failed", len(running))
            for reply in running:
                reply.finish(exc)
            batch.clear()
            return []
        for row, reply in enumerate(running):
            ids = reply.prompt_ids + reply.completion
            reply.add(reply.params.pick(reply.processors, ids, logits[row : row + 1]))
        return self._leave_ended(running, batch)

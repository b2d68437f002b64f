"""The batching engine: one thread decodes every running reply in one forward pass per step.

Replies join between steps (continuous batching): each new prompt is prefilled on its own,
then its cache joins the left-padded batch. A finished or cancelled reply leaves at once.

No failure leaves a reply hanging. A forward pass that fails (out of memory, a broken
model) ends the replies it was computing with an error and the thread goes on with the
rest; a sampling error ends only its own reply. After MAX_FAILURES_IN_A_ROW failed forward
passes with none good between them, or an error in the thread's own bookkeeping, the
engine marks itself failed: every reply it holds ends with an error, new ones are refused,
and health() says why.
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

from generation.engines.base import (
    EngineConfig,
    EngineEvents,
    EngineHealth,
    EngineInfo,
    NoEvents,
    PreparedReply,
)
from generation.engines.batch_cache import BatchCache, check_joinable
from generation.engines.prompting import PromptPreparer
from generation.errors import EngineClosed, EngineFailed
from generation.loading import LoadedModel, load_model
from generation.prompts import Turn
from generation.queue import GenerationQueue, Ticket
from generation.sampling import SamplingParams
from generation.stopping import CancelToken
from generation.streaming import GenerationResult, TextCallback, TokenStream, relay

logger = logging.getLogger(__name__)

MAX_FAILURES_IN_A_ROW = 3


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
    finished: bool = False

    def add(self, token_id: int) -> None:
        """Record and stream one generated id: one decoding step of this reply."""
        self.completion.append(token_id)
        self.cancel.steps += 1
        self.stream.push(token_id)

    def ended(self, stop_ids: frozenset[int]) -> bool:
        """Whether the reply is over: finished, a stop id, the length limit, or a cancel."""
        return (
            self.finished
            or self.cancel.cancelled
            or len(self.completion) >= self.params.max_new_tokens
            or (bool(self.completion) and self.completion[-1] in stop_ids)
        )

    def finish(self, error: BaseException | None = None) -> None:
        """Hand the ids (or the error) back to the event loop; only the first call counts."""
        if self.finished:
            return
        self.finished = True
        try:
            self.stream.end()
            self.loop.call_soon_threadsafe(self._settle, error)
        except RuntimeError:
            # The loop is closed: nobody is waiting for this reply any more.
            logger.warning("a reply ended after its event loop closed")

    def _settle(self, error: BaseException | None) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(self.completion)
        else:
            self.done.set_exception(error)


class BatchingEngine:
    """Decodes up to `slots` replies together; more wait in line."""

    kind = "batched"

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        slots: int,
        max_waiting: int,
        events: EngineEvents | None = None,
    ) -> None:
        check_joinable(loaded.model.config)
        self.loaded = loaded
        self.info = EngineInfo(self.kind, loaded.name, loaded.device, loaded.context_size)
        self.queue = GenerationQueue(slots, max_waiting)
        self._events = events or NoEvents()
        self._prompts = PromptPreparer(loaded.prompt_format, loaded.context_size)
        self._stop_ids = frozenset(loaded.prompt_format.stop_token_ids)
        # As generate does: compute the prefill's logits for the last position only.
        forward_args = inspect.signature(loaded.model.forward).parameters
        self._prefill_kwargs: dict[str, Any] = (
            {"logits_to_keep": 1} if "logits_to_keep" in forward_args else {}
        )
        self._arrivals: queue.SimpleQueue[_Reply | None] = queue.SimpleQueue()
        # Held while a reply is handed to the thread and while the engine is marked failed,
        # so no reply slips into the line after the thread has emptied it for the last time.
        self._handover = threading.Lock()
        self._closed = False
        self._failure: str | None = None
        self._failures_in_a_row = 0
        self._batch = BatchCache()
        self._running: list[_Reply] = []
        self._thread = threading.Thread(target=self._run, name="wxgpt-batch", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, config: EngineConfig) -> "BatchingEngine":
        """Load the model and start the decoding thread (blocking; call from a worker thread);
        raises UnsupportedCache for a model whose cache cannot be batched."""
        return cls(
            load_model(config.model),
            slots=config.slots,
            max_waiting=config.max_waiting,
            events=config.events,
        )

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
        and is awaited before the cancellation goes on. Raises EngineFailed once the engine
        has failed.
        """
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
        with self._handover:
            if self._failure is not None:
                raise EngineFailed(self._failure)
            if self._closed:
                raise EngineClosed("the generation engine is shut down")
            self._arrivals.put(reply)
        return await relay(request, cancel, on_text, stream, reply.done, self._stop_ids)

    def health(self) -> EngineHealth:
        """Ready until closed or failed."""
        if self._failure is not None:
            return EngineHealth(False, self._failure)
        if self._closed:
            return EngineHealth(False, "the engine is shut down")
        return EngineHealth(True)

    def close(self) -> None:
        """Stop taking work; replies already in the batch run to their end."""
        with self._handover:
            self._closed = True
            self._arrivals.put(None)

    def _run(self) -> None:
        try:
            self._decode_until_closed()
        except BaseException as exc:
            self._fail(exc)

    def _decode_until_closed(self) -> None:
        closing = False
        while not (closing and not self._running):
            # With nothing to decode, sleep until a reply arrives; otherwise only look.
            arrivals, closing = self._take_arrivals(wait=not self._running, closing=closing)
            for reply in arrivals:
                if self._prefill(reply):
                    self._running.append(reply)
            self._leave_ended()
            if self._running:
                self._step()

    def _fail(self, exc: BaseException) -> None:
        """Mark the engine failed and end every reply it holds or is handed with an error."""
        logger.critical("the batched engine failed and takes no more replies", exc_info=exc)
        with self._handover:
            cause = str(exc) if isinstance(exc, EngineFailed) else _describe(exc)
            self._failure = f"the batched engine failed: {cause}; restart the server"
            self._closed = True
        self._events.engine_error("engine_failed")
        error = EngineFailed(self._failure)
        for reply in self._running:
            reply.finish(error)
        self._running = []
        self._batch.clear()
        while True:
            try:
                item = self._arrivals.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.finish(error)

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

    def _forward_failed(self, kind: str, exc: Exception, count: int) -> None:
        """A forward pass (or the join after it) failed; too many in a row fail the engine."""
        logger.exception("%s of %d replies failed", kind.replace("_", " "), count)
        self._events.engine_error(kind)
        if isinstance(exc, torch.OutOfMemoryError) and torch.cuda.is_available():
            torch.cuda.empty_cache()
        self._failures_in_a_row += 1
        if self._failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            raise EngineFailed(
                f"{self._failures_in_a_row} forward passes failed in a row, the last with "
                f"{_describe(exc)}"
            ) from exc

    @torch.no_grad()
    def _prefill(self, reply: _Reply) -> bool:
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
            del output
            self._pick(reply, reply.prompt_ids, logits)
            if reply.ended(self._stop_ids):
                reply.finish()
                return False
            self._batch.join(cache)
        except Exception as exc:
            reply.finish(exc)
            self._forward_failed("prefill", exc, 1)
            return False
        self._failures_in_a_row = 0
        return True

    def _pick(self, reply: _Reply, ids: list[int], logits: torch.Tensor) -> None:
        """Sample and stream the reply's next token; a failure ends only this reply."""
        try:
            if bool(torch.isnan(logits).any()):
                raise FloatingPointError("the model gave NaN logits")
            reply.add(reply.params.pick(reply.processors, ids, logits))
        except Exception as exc:
            logger.exception("sampling a reply's token %d failed", len(reply.completion) + 1)
            self._events.engine_error("sampling")
            reply.finish(exc)

    def _leave_ended(self) -> None:
        """Finish replies that are over (a cancel may have come during the last step)."""
        running = self._running
        staying = [row for row, reply in enumerate(running) if not reply.ended(self._stop_ids)]
        if len(staying) == len(running):
            return
        for row, reply in enumerate(running):
            if row not in staying:
                reply.finish()
        self._batch.keep(staying)
        self._running = [running[row] for row in staying]

    @torch.no_grad()
    def _step(self) -> None:
        running = self._running
        try:
            logits = self._batch.step(
                self.loaded.model, [reply.completion[-1] for reply in running]
            )
        except Exception as exc:
            # The cache may hold this step for some layers and not others: drop the batch.
            for reply in running:
                reply.finish(exc)
            self._running = []
            self._batch.clear()
            self._forward_failed("decode_step", exc, len(running))
            return
        self._failures_in_a_row = 0
        for row, reply in enumerate(running):
            self._pick(reply, reply.prompt_ids + reply.completion, logits[row : row + 1])
        self._leave_ended()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

"""The batching engine: one thread decodes every running reply, a forward pass per group of
replies per step.

Replies join between steps (continuous batching). A new prompt is prefilled into its own
cache in chunks, one turn of the thread at a time, so a long prompt never holds the other
replies' steps for longer than one chunk (vLLM's chunked prefill), and after each chunk the
replies that are decoding get as much time for their steps as the chunk took before the long
prompt goes on: while others decode, a long prompt has at most half the thread, and their
text keeps coming at no less than half its pace. Prompts that go in whole are not held back
by that. A chunk is at most `prefill_chunk_tokens`, and with `prefill_chunk_seconds` as
many tokens as the last chunk's speed says fit in that time: the same setting suits a small
model on a GPU and a larger one on two CPU cores. While more replies wait for their first
token than are decoding, whole prompts fill the token cap instead: a crowd arriving at once
goes in together rather than a few per turn. A prefilled reply's cache then joins a group of
replies whose contexts are of similar length, left-padded to the longest: a short reply is
never padded to a long one's context, and a long reply's memory goes when it ends. A
finished or cancelled reply leaves at once.

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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache

from generation.engine_config import EngineConfig, EngineEvents, NoEvents
from generation.engines.base import EngineHealth, EngineInfo, PreparedReply
from generation.engines.batch_cache import (
    BatchCache,
    cache_argument,
    check_joinable,
    split_rows,
)
from generation.engines.memory import give_back_freed_memory
from generation.engines.prompting import PromptPreparer
from generation.engines.token_picking import TokenPicker
from generation.errors import EngineClosed, EngineFailed
from generation.loading import LoadedModel, load_model
from generation.prompts import Turn
from generation.queue import GenerationQueue, Ticket
from generation.sampling import SamplingParams
from generation.stopping import CancelToken
from generation.streaming import GenerationResult, TextCallback, TokenStream, relay

logger = logging.getLogger(__name__)

MAX_FAILURES_IN_A_ROW = 3
# The smallest chunk a timed prefill runs, and its first, before any chunk was timed.
MIN_CHUNK_TOKENS = 16
FIRST_TIMED_CHUNK_TOKENS = 64
# A group that emptied after holding a context this long gives its memory back at once.
LONG_CONTEXT_TOKENS = 1024


@dataclass(eq=False)
class _Reply:
    """One reply in the batch: what it was asked, what it has produced, where its text goes."""

    prompt_ids: list[int]
    params: SamplingParams
    cancel: CancelToken
    stream: TokenStream
    loop: asyncio.AbstractEventLoop
    done: "asyncio.Future[list[int]]"
    picker: TokenPicker
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


@dataclass(eq=False)
class _Prefill:
    """A reply whose prompt goes into its own cache, a chunk per turn of the thread."""

    reply: _Reply
    cache: DynamicCache
    done: int = 0

    @property
    def remaining(self) -> int:
        """Prompt tokens not yet in the cache."""
        return len(self.reply.prompt_ids) - self.done


@dataclass(eq=False)
class _Group:
    """Replies of similar context length, stepped together in one forward pass."""

    batch: BatchCache = field(default_factory=BatchCache)
    replies: list[_Reply] = field(default_factory=list)
    # The widest the batch has been: how much memory it may leave behind when it empties.
    widest: int = 0


class BatchingEngine:
    """Decodes up to `slots` replies together; more wait in line."""

    kind = "batched"

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        slots: int,
        max_waiting: int,
        prefill_chunk_tokens: int = 256,
        prefill_chunk_seconds: float | None = None,
        max_message_tokens: int | None = None,
        events: EngineEvents | None = None,
    ) -> None:
        check_joinable(loaded.model.config)
        if prefill_chunk_tokens < 1:
            raise ValueError("a prefill chunk needs at least one token")
        self.loaded = loaded
        self.info = EngineInfo(self.kind, loaded.name, loaded.device, loaded.context_size)
        self.queue = GenerationQueue(slots, max_waiting)
        self._events = events or NoEvents()
        self._prompts = PromptPreparer(
            loaded.prompt_format, loaded.context_size, max_message_tokens
        )
        self._stop_ids = frozenset(loaded.prompt_format.stop_token_ids)
        self._chunk_tokens = prefill_chunk_tokens
        self._chunk_seconds = prefill_chunk_seconds
        self._seconds_per_token: float | None = None
        # Decoding time the running replies are owed for the last chunk of a long prompt.
        self._owed_seconds = 0.0
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
        self._prefilling: list[_Prefill] = []
        self._groups: list[_Group] = []
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
            prefill_chunk_tokens=config.prefill_chunk_tokens,
            prefill_chunk_seconds=config.prefill_chunk_seconds,
            max_message_tokens=config.max_message_tokens,
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
            picker=TokenPicker(request.params),
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

    def join(self, timeout: float | None = None) -> bool:
        """After `close`, wait (blocking) until the decoding thread has ended, which it does
        once the replies it holds are over; whether it has. A process that exits while the
        thread is still in a forward pass is aborted by torch's teardown."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._decode_until_closed()
        except BaseException as exc:
            self._fail(exc)

    def _busy(self) -> bool:
        return bool(self._groups or self._prefilling)

    def _decode_until_closed(self) -> None:
        closing = False
        while not (closing and not self._busy()):
            # With nothing to do, sleep until a reply arrives; otherwise only look.
            arrivals, closing = self._take_arrivals(wait=not self._busy(), closing=closing)
            model_config = self.loaded.model.config
            self._prefilling += [_Prefill(r, DynamicCache(config=model_config)) for r in arrivals]
            if self._prefilling:
                self._prefill_a_chunk()
            began = time.perf_counter()
            for group in self._groups:
                self._leave_ended(group)
                if group.replies:
                    self._step(group)
            self._drop_empty_groups()
            stepped = time.perf_counter() - began
            self._owed_seconds = max(0.0, self._owed_seconds - stepped) if self._groups else 0.0

    def _drop_empty_groups(self) -> None:
        """An emptied group's cache goes with it; after a long context's, the freed memory
        is given back to the system, so a long reply does not leave the process at its peak."""
        emptied = [group for group in self._groups if not group.replies]
        if not emptied:
            return
        self._groups = [group for group in self._groups if group.replies]
        if max(group.widest for group in emptied) >= LONG_CONTEXT_TOKENS:
            give_back_freed_memory(self.loaded.device)

    def _fail(self, exc: BaseException) -> None:
        """Mark the engine failed and end every reply it holds or is handed with an error."""
        logger.critical("the batched engine failed and takes no more replies", exc_info=exc)
        with self._handover:
            cause = str(exc) if isinstance(exc, EngineFailed) else _describe(exc)
            self._failure = f"the batched engine failed: {cause}; restart the server"
            self._closed = True
        self._events.engine_error("engine_failed")
        error = EngineFailed(self._failure)
        held = [p.reply for p in self._prefilling] + [r for g in self._groups for r in g.replies]
        for reply in held:
            reply.finish(error)
        self._prefilling, self._groups = [], []
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

    def _prefill_a_chunk(self) -> None:
        """Prefill up to one chunk's worth of prompt tokens, shortest prompts first: short
        ones start at once, and a long one goes on a chunk per turn between the steps, once
        the decoding replies have had the time its last chunk took. Only a prompt longer
        than a turn's budget is cut into chunks; prompts that go in whole this turn are
        prefilled together, in one forward pass. While more replies wait for their first
        token than are decoding (a crowd arriving at once), whole prompts may fill the token
        cap: the few decoding replies wait one longer pass so that the many do not wait a
        turn each."""
        timed = self._chunk_budget()
        full = budget = self._chunk_tokens if self._newcomers_outnumber_decoders() else timed
        whole: list[_Prefill] = []
        for prefill in sorted(self._prefilling, key=lambda p: p.remaining):
            if budget == 0:
                break
            if prefill.reply.cancel.cancelled:
                prefill.reply.finish()
                continue
            if prefill.done == 0 and prefill.remaining <= budget:
                whole.append(prefill)
                budget -= prefill.remaining
            elif (prefill.done == 0 and prefill.remaining <= full) or self._owed_seconds > 0:
                # A prompt that fits a whole turn goes in whole in the next one, with others.
                continue
            else:
                tokens = min(prefill.remaining, budget, timed)
                self._prefill(prefill, tokens)
                if prefill.remaining and not prefill.reply.finished:
                    self._owed_seconds = (self._seconds_per_token or 0.0) * tokens
                budget -= tokens
        for together in _batches_of_little_padding(whole):
            if len(together) == 1:
                self._prefill(together[0], together[0].remaining)
            else:
                self._prefill_together(together)
        self._prefilling = [p for p in self._prefilling if p.remaining and not p.reply.finished]

    def _newcomers_outnumber_decoders(self) -> bool:
        decoding = sum(len(group.replies) for group in self._groups)
        return len(self._prefilling) > decoding

    def _chunk_budget(self) -> int:
        """Prompt tokens to prefill this turn: the cap, or what fits in the time allowed at
        the speed of the last chunk (a later chunk of a long prompt is slower per token, as
        it attends over more, and the estimate follows)."""
        if not self._chunk_seconds:
            return self._chunk_tokens
        if self._seconds_per_token is None:
            return min(self._chunk_tokens, FIRST_TIMED_CHUNK_TOKENS)
        fit = int(self._chunk_seconds / self._seconds_per_token)
        return max(MIN_CHUNK_TOKENS, min(self._chunk_tokens, fit))

    @torch.no_grad()
    def _prefill(self, prefill: _Prefill, tokens: int) -> None:
        """Run the next `tokens` of the prompt; after the last, take the first token and join
        a group."""
        reply, start = prefill.reply, prefill.done
        device = self.loaded.device
        ids = torch.tensor([reply.prompt_ids[start : start + tokens]], device=device)
        began = time.perf_counter()
        try:
            output = self.loaded.model(
                input_ids=ids,
                attention_mask=torch.ones((1, start + tokens), dtype=torch.long, device=device),
                use_cache=True,
                **cache_argument(self.loaded.model, prefill.cache),
                **self._prefill_kwargs,
            )
            prefill.done += tokens
            self._seconds_per_token = (time.perf_counter() - began) / tokens
            if prefill.remaining == 0:
                logits = output.logits[:, -1].to(dtype=torch.float32)
                del output
                self._pick([reply], logits)
                if reply.ended(self._stop_ids):
                    reply.finish()
                else:
                    self._join(reply, prefill.cache)
        except Exception as exc:
            reply.finish(exc)
            self._forward_failed("prefill", exc, 1)
            return
        self._failures_in_a_row = 0

    @torch.no_grad()
    def _prefill_together(self, prefills: list[_Prefill]) -> None:
        """Prefill whole prompts in one forward pass, left-padded to the longest, then take
        each one's first token and let each join a group with its own rows of the cache."""
        device = self.loaded.device
        longest = max(prefill.remaining for prefill in prefills)
        pads = [longest - prefill.remaining for prefill in prefills]
        filler = next(iter(self._stop_ids), 0)
        ids = torch.tensor(
            [[filler] * pad + p.reply.prompt_ids for pad, p in zip(pads, prefills, strict=True)],
            device=device,
        )
        mask = torch.tensor(
            [[0] * pad + [1] * p.remaining for pad, p in zip(pads, prefills, strict=True)],
            device=device,
        )
        cache = DynamicCache(config=self.loaded.model.config)
        began = time.perf_counter()
        try:
            output = self.loaded.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                use_cache=True,
                **cache_argument(self.loaded.model, cache),
                **self._prefill_kwargs,
            )
            logits = output.logits[:, -1].to(dtype=torch.float32)
            del output
            self._seconds_per_token = (time.perf_counter() - began) / int(mask.sum())
            rows = split_rows(cache, self.loaded.model.config, pads)
        except Exception as exc:
            for prefill in prefills:
                prefill.reply.finish(exc)
            self._forward_failed("prefill", exc, len(prefills))
            return
        self._failures_in_a_row = 0
        for prefill in prefills:
            prefill.done = len(prefill.reply.prompt_ids)
        self._pick([prefill.reply for prefill in prefills], logits)
        for prefill, row_cache in zip(prefills, rows, strict=True):
            reply = prefill.reply
            if reply.ended(self._stop_ids):
                reply.finish()
                continue
            try:
                self._join(reply, row_cache)
            except Exception as exc:
                reply.finish(exc)
                self._forward_failed("prefill", exc, 1)

    def _join(self, reply: _Reply, cache: DynamicCache) -> None:
        """Add the prefilled reply to the group its length fits best, or to a new one."""
        length = cache.get_seq_length()
        fitting = [group for group in self._groups if group.batch.fits(length)]
        if fitting:
            group = min(fitting, key=lambda group: group.batch.padding_for(length))
        else:
            group = _Group()
            self._groups.append(group)
        group.batch.join(cache)
        group.replies.append(reply)
        group.widest = max(group.widest, group.batch.width)

    def _pick(self, replies: list[_Reply], logits: torch.Tensor) -> None:
        """Sample and stream the next token of each reply (a row of `logits` each), the
        replies of the same settings together; a failure ends only its own reply."""
        nan = torch.isnan(logits).any(dim=-1).tolist()
        alike: dict[tuple[float, int, float, float], list[int]] = {}
        for row, reply in enumerate(replies):
            if nan[row]:
                self._sampling_failed(reply, FloatingPointError("the model gave NaN logits"))
            else:
                alike.setdefault(reply.params.choice, []).append(row)
        for rows in alike.values():
            chosen = [replies[row] for row in rows]
            try:
                tokens = chosen[0].picker.pick(
                    [reply.prompt_ids + reply.completion for reply in chosen],
                    logits[rows] if len(rows) < len(replies) else logits,
                )
            except Exception as exc:
                if len(rows) == 1:
                    self._sampling_failed(chosen[0], exc)
                else:
                    # Find the row that fails: the others go on.
                    for row in rows:
                        self._pick([replies[row]], logits[row : row + 1])
                continue
            for reply, token in zip(chosen, tokens, strict=True):
                reply.add(token)

    def _sampling_failed(self, reply: _Reply, error: Exception) -> None:
        """End one reply whose next token could not be sampled."""
        token = len(reply.completion) + 1
        logger.error("sampling a reply's token %d failed", token, exc_info=error)
        self._events.engine_error("sampling")
        reply.finish(error)

    def _leave_ended(self, group: _Group) -> None:
        """Finish replies that are over (a cancel may have come during the last step)."""
        replies = group.replies
        staying = [row for row, reply in enumerate(replies) if not reply.ended(self._stop_ids)]
        if len(staying) == len(replies):
            return
        for row, reply in enumerate(replies):
            if row not in staying:
                reply.finish()
        group.batch.keep(staying)
        group.replies = [replies[row] for row in staying]

    @torch.no_grad()
    def _step(self, group: _Group) -> None:
        replies = group.replies
        try:
            logits = group.batch.step(
                self.loaded.model, [reply.completion[-1] for reply in replies]
            )
        except Exception as exc:
            # The cache may hold this step for some layers and not others: drop the group.
            for reply in replies:
                reply.finish(exc)
            group.replies = []
            group.batch.clear()
            self._forward_failed("decode_step", exc, len(replies))
            return
        self._failures_in_a_row = 0
        self._pick(replies, logits)
        self._leave_ended(group)


def _batches_of_little_padding(prefills: list[_Prefill]) -> list[list[_Prefill]]:
    """Prompts (shortest first) in runs that can be prefilled together with at most as much
    left padding as prompt."""
    batches: list[list[_Prefill]] = []
    for prefill in prefills:
        current = batches[-1] if batches else []
        padded = (len(current) + 1) * prefill.remaining
        if current and padded <= 2 * (sum(p.remaining for p in current) + prefill.remaining):
            current.append(prefill)
        else:
            batches.append([prefill])
    return batches


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

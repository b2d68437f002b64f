"""The streaming engine: `model.generate` in a worker thread, text handed to the event loop."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import torch
from transformers import StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from generation.decoding import StreamDecoder
from generation.loading import LoadedModel
from generation.queue import GenerationQueue, Ticket
from generation.sampling import SamplingParams
from generation.stopping import CancelCriteria, CancelToken

logger = logging.getLogger(__name__)

FinishReason = Literal["stop", "length", "cancelled", "error"]
TextCallback = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class GenerationResult:
    """How a reply ended, with the counts and timings that are stored beside it."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    first_token_s: float | None
    duration_s: float
    error: str | None = None


class _LoopStreamer(BaseStreamer):
    """Receives token ids in the worker thread and posts decoded text to the event loop."""

    def __init__(
        self,
        decoder: StreamDecoder,
        loop: asyncio.AbstractEventLoop,
        out: "asyncio.Queue[str | None]",
    ) -> None:
        self._decoder = decoder
        self._loop = loop
        self._out = out
        self._prompt_seen = False
        self._ended = False
        self.started = time.perf_counter()
        self.first_token_at: float | None = None

    def put(self, value: torch.Tensor) -> None:
        # generate() first pushes the prompt, then one token per step.
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        for token_id in value.reshape(-1).tolist():
            self._post(self._decoder.push(int(token_id)))

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._post(self._decoder.flush())
        self._loop.call_soon_threadsafe(self._out.put_nowait, None)

    def _post(self, text: str) -> None:
        if text:
            self._loop.call_soon_threadsafe(self._out.put_nowait, text)


class Engine:
    """Runs replies on the loaded model, `slots` at a time, the rest waiting in line."""

    def __init__(self, loaded: LoadedModel, *, slots: int, max_waiting: int) -> None:
        self.loaded = loaded
        self.queue = GenerationQueue(slots, max_waiting)
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="wxgpt-generate")

    def reserve(self) -> Ticket:
        """A slot or a place in line for one reply; raises QueueFull."""
        return self.queue.reserve()

    async def generate(
        self,
        prompt_ids: list[int],
        params: SamplingParams,
        cancel: CancelToken,
        on_text: TextCallback,
    ) -> GenerationResult:
        """Generate one reply, awaiting `on_text` with each new piece; never blocks the loop.

        `on_text` must not raise. If this coroutine is cancelled, the model is stopped and
        the worker thread is awaited before the cancellation goes on.
        """
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        streamer = _LoopStreamer(self.loaded.prompt_format.stream_decoder(), loop, pieces)
        work = loop.run_in_executor(
            self._executor, self._run_model, prompt_ids, params, cancel, streamer
        )
        text_parts: list[str] = []
        try:
            while (piece := await pieces.get()) is not None:
                text_parts.append(piece)
                await on_text(piece)
        except asyncio.CancelledError:
            cancel.cancel()
            await asyncio.shield(work)
            raise
        text = "".join(text_parts)
        duration = time.perf_counter() - streamer.started
        first_token = (
            None if streamer.first_token_at is None else streamer.first_token_at - streamer.started
        )
        try:
            output: list[int] = await work
        except Exception as exc:
            logger.exception("generation failed after %d characters", len(text))
            return GenerationResult(
                text, "error", len(prompt_ids), 0, first_token, duration, error=str(exc)
            )
        completion = output[len(prompt_ids) :]
        return GenerationResult(
            text=text,
            finish_reason=self._finish_reason(completion, params, cancel),
            prompt_tokens=len(prompt_ids),
            completion_tokens=len(completion),
            first_token_s=first_token,
            duration_s=duration,
        )

    def close(self) -> None:
        """Stop taking work; running replies finish in their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run_model(
        self,
        prompt_ids: list[int],
        params: SamplingParams,
        cancel: CancelToken,
        streamer: _LoopStreamer,
    ) -> list[int]:
        loaded = self.loaded
        stop_ids = loaded.prompt_format.stop_token_ids
        input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=loaded.device)
        kwargs: dict[str, Any] = params.generate_kwargs()
        try:
            output = loaded.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                eos_token_id=stop_ids,
                pad_token_id=_pad_id(loaded, stop_ids),
                stopping_criteria=StoppingCriteriaList([CancelCriteria(cancel)]),
                streamer=streamer,
                **kwargs,
            )
        finally:
            # On an exception generate() never calls end(); the reader must still finish.
            streamer.end()
        ids: list[int] = output[0].tolist()
        return ids

    def _finish_reason(
        self, completion: list[int], params: SamplingParams, cancel: CancelToken
    ) -> FinishReason:
        if completion and completion[-1] in self.loaded.prompt_format.stop_token_ids:
            return "stop"
        if cancel.cancelled:
            return "cancelled"
        if len(completion) >= params.max_new_tokens:
            return "length"
        return "stop"


def _pad_id(loaded: LoadedModel, stop_ids: list[int]) -> int:
    pad = loaded.tokenizer.pad_token_id
    return int(pad) if pad is not None else stop_ids[0]

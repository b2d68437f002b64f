"""One reply's way from the model's thread to the event loop: ids in, text and a result out."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from generation.decoding import StreamDecoder
from generation.stopping import CancelToken

if TYPE_CHECKING:
    from generation.engines.base import PreparedReply

logger = logging.getLogger(__name__)

# "interrupted": the server stopped (shut down or crashed) before the reply ended.
FinishReason = Literal["stop", "length", "cancelled", "interrupted", "error"]
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


class TokenStream:
    """Fed generated ids in the model's thread; posts their text, then None, to the event loop."""

    def __init__(self, decoder: StreamDecoder, loop: asyncio.AbstractEventLoop) -> None:
        self.pieces: asyncio.Queue[str | None] = asyncio.Queue()
        self._decoder = decoder
        self._loop = loop
        self._ended = False
        self.started = time.perf_counter()
        self.first_token_at: float | None = None

    def push(self, token_id: int) -> None:
        """One generated id (called from the model's thread)."""
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self._post(self._decoder.push(token_id))

    def end(self) -> None:
        """No more ids: post what the decoder held back, then the end mark; safe to call twice."""
        if self._ended:
            return
        self._ended = True
        self._post(self._decoder.flush())
        self._loop.call_soon_threadsafe(self.pieces.put_nowait, None)

    def _post(self, text: str) -> None:
        if text:
            self._loop.call_soon_threadsafe(self.pieces.put_nowait, text)


def finish_reason(
    completion: list[int], stop_ids: Collection[int], max_new_tokens: int, cancel: CancelToken
) -> FinishReason:
    """Why a reply that ended without an error ended."""
    if completion and completion[-1] in stop_ids:
        return "stop"
    if cancel.cancelled:
        return "cancelled"
    if len(completion) >= max_new_tokens:
        return "length"
    return "stop"


async def relay(
    reply: "PreparedReply",
    cancel: CancelToken,
    on_text: TextCallback,
    stream: TokenStream,
    work: "asyncio.Future[list[int]]",
    stop_ids: Collection[int],
) -> GenerationResult:
    """Await `on_text` with each piece of `stream` until the reply ends; `work` gives its ids.

    If this coroutine is cancelled, the model is stopped and `work` awaited before the
    cancellation goes on.
    """
    text_parts: list[str] = []
    try:
        while (piece := await stream.pieces.get()) is not None:
            text_parts.append(piece)
            await on_text(piece)
    except asyncio.CancelledError:
        cancel.cancel()
        await asyncio.shield(work)
        raise
    text = "".join(text_parts)
    prompt_tokens = reply.prompt_tokens
    duration = time.perf_counter() - stream.started
    first_token = None if stream.first_token_at is None else stream.first_token_at - stream.started
    try:
        completion = await work
    except Exception as exc:
        logger.exception("generation failed after %d characters", len(text))
        return GenerationResult(
            text, "error", prompt_tokens, 0, first_token, duration, error=str(exc)
        )
    return GenerationResult(
        text=text,
        finish_reason=finish_reason(completion, stop_ids, reply.params.max_new_tokens, cancel),
        prompt_tokens=prompt_tokens,
        completion_tokens=len(completion),
        first_token_s=first_token,
        duration_s=duration,
    )

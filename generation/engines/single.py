"""The thread-per-reply engine: `model.generate` in a worker thread, text posted to the loop."""

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from transformers import StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from generation.engine_config import EngineConfig
from generation.engines.base import EngineHealth, EngineInfo, PreparedReply
from generation.engines.prompting import PromptPreparer
from generation.errors import EngineClosed
from generation.loading import LoadedModel, load_model
from generation.prompts import Turn
from generation.queue import GenerationQueue, Ticket
from generation.sampling import SamplingParams
from generation.stopping import CancelCriteria, CancelToken
from generation.streaming import GenerationResult, TextCallback, TokenStream, relay


class _GenerateStreamer(BaseStreamer):
    """Hands the ids `generate` produces, minus the prompt it pushes first, to a TokenStream."""

    def __init__(self, stream: TokenStream) -> None:
        self._stream = stream
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token_id in value.reshape(-1).tolist():
            self._stream.push(int(token_id))

    def end(self) -> None:
        self._stream.end()


class SingleEngine:
    """Runs replies on the loaded model, `slots` at a time, the rest waiting in line."""

    kind = "single"

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        slots: int,
        max_waiting: int,
        max_message_tokens: int | None = None,
    ) -> None:
        self.loaded = loaded
        self.info = EngineInfo(self.kind, loaded.name, loaded.device, loaded.context_size)
        self.queue = GenerationQueue(slots, max_waiting)
        self._prompts = PromptPreparer(
            loaded.prompt_format, loaded.context_size, max_message_tokens
        )
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="wxgpt-generate")
        self._closed = False

    @classmethod
    def start(cls, config: EngineConfig) -> "SingleEngine":
        """Load the model and start (blocking; call from a worker thread)."""
        return cls(
            load_model(config.model),
            slots=config.slots,
            max_waiting=config.max_waiting,
            max_message_tokens=config.max_message_tokens,
        )

    async def prepare(self, turns: Sequence[Turn], params: SamplingParams) -> PreparedReply:
        """The newest turns that fit the model's context; raises PromptTooLong."""
        return await self._prompts.prepare(turns, params)

    def reserve(self) -> Ticket:
        """A slot or a place in line for one reply; raises QueueFull."""
        return self.queue.reserve()

    async def generate(
        self, reply: PreparedReply, cancel: CancelToken, on_text: TextCallback
    ) -> GenerationResult:
        """Generate one reply, awaiting `on_text` with each new piece; never blocks the loop.

        `on_text` must not raise. If this coroutine is cancelled, the model is stopped and
        the worker thread is awaited before the cancellation goes on.
        """
        if self._closed:
            raise EngineClosed("the generation engine is shut down")
        loop = asyncio.get_running_loop()
        stream = TokenStream(self.loaded.prompt_format.stream_decoder(), loop)
        work = loop.run_in_executor(self._executor, self._run_model, reply, cancel, stream)
        stop_ids = self.loaded.prompt_format.stop_token_ids
        return await relay(reply, cancel, on_text, stream, work, stop_ids)

    def health(self) -> EngineHealth:
        """Ready until closed: a failed `generate` fails only its own reply."""
        if self._closed:
            return EngineHealth(False, "the engine is shut down")
        return EngineHealth(True)

    def close(self) -> None:
        """Stop taking work; running replies finish in their threads."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run_model(
        self, reply: PreparedReply, cancel: CancelToken, stream: TokenStream
    ) -> list[int]:
        loaded = self.loaded
        stop_ids = loaded.prompt_format.stop_token_ids
        input_ids = torch.tensor([reply.prompt_ids], dtype=torch.long, device=loaded.device)
        kwargs: dict[str, Any] = reply.params.generate_kwargs()
        try:
            output = loaded.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                eos_token_id=stop_ids,
                pad_token_id=_pad_id(loaded, stop_ids),
                stopping_criteria=StoppingCriteriaList([CancelCriteria(cancel)]),
                streamer=_GenerateStreamer(stream),
                **kwargs,
            )
        finally:
            # On an exception generate() never calls end(); the reader must still finish.
            stream.end()
        completion: list[int] = output[0, reply.prompt_tokens :].tolist()
        return completion


def _pad_id(loaded: LoadedModel, stop_ids: list[int]) -> int:
    pad = loaded.tokenizer.pad_token_id
    return int(pad) if pad is not None else stop_ids[0]

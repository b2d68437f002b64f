"""Cancellation that reaches the model: a flag read between decoding steps."""

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import torch
from transformers import StoppingCriteria


class CancelToken:
    """Set by `stop` or a closed socket; read by the decoding loop in the worker thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._wakers: list[Callable[[], None]] = []
        self.steps = 0
        self.steps_at_cancel: int | None = None

    def cancel(self) -> None:
        """Ask the reply to stop after the decoding step in progress."""
        with self._lock:
            if self._event.is_set():
                return
            self.steps_at_cancel = self.steps
            self._event.set()
            wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()

    async def wait(self) -> None:
        """Return once cancel() was called, from whichever thread called it."""
        loop = asyncio.get_running_loop()
        cancelled = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(cancelled.set)

        with self._lock:
            if self._event.is_set():
                return
            self._wakers.append(wake)
        try:
            await cancelled.wait()
        finally:
            with self._lock:
                if wake in self._wakers:
                    self._wakers.remove(wake)

    @property
    def cancelled(self) -> bool:
        """Whether cancel() was called."""
        return self._event.is_set()

    @property
    def steps_after_cancel(self) -> int | None:
        """Decoding steps that finished after cancel(): at most one when the flag works."""
        if self.steps_at_cancel is None:
            return None
        return self.steps - self.steps_at_cancel


class CancelCriteria(StoppingCriteria):
    """Stops generation at the first step that sees the token cancelled."""

    def __init__(self, token: CancelToken) -> None:
        self.token = token

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        self.token.steps += 1
        stop = torch.full(
            (input_ids.shape[0],), self.token.cancelled, dtype=torch.bool, device=input_ids.device
        )
        return stop  # type: ignore[return-value]

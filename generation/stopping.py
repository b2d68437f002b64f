"""Cancellation that reaches the model: a flag read between decoding steps."""

import threading
from typing import Any

import torch
from transformers import StoppingCriteria


class CancelToken:
    """Set by `stop` or a closed socket; read by the decoding loop in the worker thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.steps = 0
        self.steps_at_cancel: int | None = None

    def cancel(self) -> None:
        """Ask the reply to stop after the decoding step in progress."""
        if not self._event.is_set():
            self.steps_at_cancel = self.steps
            self._event.set()

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

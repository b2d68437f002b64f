"""The test's hand on an in-process model's forward passes: it sees each one (how many rows,
how many new tokens, how wide the attention, when it began), can hold them at a gate it opens
pass by pass, can make chosen passes slow, fail or give NaN logits, so that an engine's
failures and its timing decisions are caught at the step where they happen however fast or
slow the machine is."""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Pass:
    """One forward pass of the model, as its arguments describe it."""

    index: int
    rows: int
    tokens: int
    width: int
    # time.perf_counter() as the pass left the gate.
    began: float = field(default=0.0, compare=False)

    @property
    def is_step(self) -> bool:
        """A decoding step: one new token in each row."""
        return self.tokens == 1


PassCheck = Callable[[Pass], bool]


async def eventually(check: Callable[[], bool]) -> None:
    """Return once `check()` holds, looking again every few milliseconds (a test's timeout
    bounds the wait)."""
    while True:
        if check():
            return
        await asyncio.sleep(0.005)


class ForwardPasses:
    """Hooks on `model` (removed on exit); open until `hold` is called."""

    def __init__(self, model: torch.nn.Module) -> None:
        self._model = model
        self._changed = threading.Condition()
        self._allowed: int | None = None
        self._errors: list[tuple[PassCheck, BaseException, bool]] = []
        self._nan_rows: list[tuple[PassCheck, int]] = []
        self._delays: list[tuple[PassCheck, float]] = []
        self.seen: list[Pass] = []
        self.waiting = 0

    @contextmanager
    def installed(self) -> Iterator["ForwardPasses"]:
        before = self._model.register_forward_pre_hook(self._before, with_kwargs=True)
        after = self._model.register_forward_hook(self._after, with_kwargs=True)
        try:
            yield self
        finally:
            before.remove()
            after.remove()
            self.open()

    def hold(self, more: int = 0) -> None:
        """Let the model run `more` passes beyond those it has run, then wait."""
        with self._changed:
            self._allowed = len(self.seen) + more
            self._changed.notify_all()

    def open(self) -> None:
        """No more waiting."""
        with self._changed:
            self._allowed = None
            self._changed.notify_all()

    def fail(self, check: PassCheck, error: BaseException, *, every: bool = False) -> None:
        """Raise `error` in the first pass (or, `every`, each pass) that `check` accepts."""
        self._errors.append((check, error, every))

    def slow(self, check: PassCheck, seconds: float) -> None:
        """Make the first pass that `check` accepts take at least `seconds` longer."""
        self._delays.append((check, seconds))

    def nan_logits(self, check: PassCheck, row: int) -> None:
        """Give row `row` of the first pass that `check` accepts NaN logits."""
        self._nan_rows.append((check, row))

    async def until(self, count: int) -> None:
        """Wait (without blocking the loop) until `count` passes have run."""
        await eventually(lambda: len(self.seen) >= count)

    async def held(self) -> None:
        """Wait until a pass waits at the gate."""
        await eventually(lambda: self.waiting > 0)

    async def step_until(self, check: PassCheck, since: int = 0, limit: int = 1000) -> Pass:
        """Allow one pass at a time until one from pass `since` on that `check` accepts has
        run; return it."""
        for _ in range(limit):
            found = next((p for p in self.seen[since:] if check(p)), None)
            if found is not None:
                return found
            self.hold(1)
            await self.until(self._allowed or 0)
        raise AssertionError(f"no such pass in {limit} passes")

    def _before(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        ids = kwargs["input_ids"]
        mask = kwargs.get("attention_mask")
        with self._changed:
            while self._allowed is not None and len(self.seen) >= self._allowed:
                self.waiting += 1
                self._changed.wait()
                self.waiting -= 1
            seen = Pass(
                len(self.seen),
                int(ids.shape[0]),
                int(ids.shape[1]),
                int(mask.shape[1]) if mask is not None else int(ids.shape[1]),
                time.perf_counter(),
            )
            self.seen.append(seen)
        for delay in list(self._delays):
            if delay[0](seen):
                self._delays.remove(delay)
                time.sleep(delay[1])
        for item in list(self._errors):
            check, error, every = item
            if check(seen):
                if not every:
                    self._errors.remove(item)
                raise error

    def _after(self, module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        seen = self.seen[-1]
        for item in list(self._nan_rows):
            check, row = item
            if check(seen):
                self._nan_rows.remove(item)
                output.logits[row] = float("nan")

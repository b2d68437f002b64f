"""The model's pace in the test's hands, for a test that must catch a reply mid-way.

While a gate is installed, every forward pass of a language model waits until the gate's file
allows it: the file holds how many forward passes may have run so far in total, or "open"; the
hook writes how many have run to the file's ".count" sibling, and how many replies have had
their stop flag set to its ".cancels" sibling. The test writes the allowance (StepFile) and so
decides how far a reply gets, however fast or slow the machine is; it can also wait until a
stop sent somewhere reached the model's process, and only then let the model go on. A file
serves every kind of server: those in the test's own process (`forward_gate`) and subprocesses
(`wxgpt serve` in tests/replica_process.py, `transformers serve` in tests/serve_engine.py, the
mini-program suite's server in tests/miniprogram_server.py, whose jest tests write the file
with miniprogram/test/helpers.js), which call `hold_if_asked` first.
"""

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from generation.stopping import CancelToken

GATE_ENV = "WXGPT_TEST_GATE_FILE"
POLL_S = 0.005


class StepFile:
    """The test's side of the gate: how many forward passes the server may run."""

    def __init__(self, path: Path, allowed: int = 0) -> None:
        self.path = path
        # Counts left by an earlier process on this file would be taken for this one's.
        for suffix in (".count", ".cancels"):
            self.path.with_suffix(suffix).unlink(missing_ok=True)
        self.allow_total(allowed)

    def allow_total(self, steps: int) -> None:
        """Let the server run `steps` forward passes in all (prefills count as one each)."""
        self._write(str(steps))

    def passes(self) -> int:
        """How many forward passes the server has run."""
        return self._read(".count")

    def cancels(self) -> int:
        """How many replies have had their stop flag set in the server (the model acts on it
        at its next step)."""
        return self._read(".cancels")

    async def until_cancels(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` replies have had their stop flag set in the server."""
        deadline = time.monotonic() + timeout
        while True:
            if self.cancels() >= count:
                return
            assert time.monotonic() < deadline, f"{self.cancels()} stop flags, not {count}"
            await asyncio.sleep(POLL_S)

    def allow_more(self, steps: int) -> None:
        """Let the server run `steps` forward passes beyond those it has run."""
        self.allow_total(self.passes() + steps)

    def open(self) -> None:
        """No more waiting."""
        self._write("open")

    def _read(self, suffix: str) -> int:
        try:
            return int(self.path.with_suffix(suffix).read_text() or 0)
        except FileNotFoundError:
            return 0

    def _write(self, value: str) -> None:
        staging = self.path.with_suffix(".tmp")
        staging.write_text(value)
        staging.replace(self.path)


def hold_forward_passes(path: Path) -> Callable[[], None]:
    """Make every forward pass of a language model in this process wait until the file at
    `path` allows it, and count the stop flags set; call the returned function to stop."""
    lock = threading.Lock()
    passes = cancels = 0
    count = path.with_suffix(".count")
    cancel = CancelToken.cancel

    def allowed() -> bool:
        try:
            value = path.read_text().strip()
        except FileNotFoundError:
            return False
        return value == "open" or passes < int(value or 0)

    def wait_for_the_gate(module: torch.nn.Module, args: Any) -> None:
        nonlocal passes
        # Only the whole model's forward pass counts, not each of its layers'.
        if not hasattr(module, "lm_head"):
            return
        while not allowed():
            time.sleep(POLL_S)
        with lock:
            passes += 1
            count.write_text(str(passes))

    def cancel_and_count(token: CancelToken) -> None:
        nonlocal cancels
        with lock:
            first = not token.cancelled
            cancel(token)
            if first:
                cancels += 1
                path.with_suffix(".cancels").write_text(str(cancels))

    hook = torch.nn.modules.module.register_module_forward_pre_hook(wait_for_the_gate)
    CancelToken.cancel = cancel_and_count  # type: ignore[method-assign]

    def release() -> None:
        hook.remove()
        CancelToken.cancel = cancel  # type: ignore[method-assign]

    return release


def hold_if_asked() -> None:
    """In a server subprocess: hold its forward passes when GATE_ENV names a gate file."""
    gate = os.environ.get(GATE_ENV)
    if gate:
        hold_forward_passes(Path(gate))


@contextlib.contextmanager
def forward_gate(path: Path) -> Iterator[StepFile]:
    """Hold the forward passes of the models in this process (servers started by the test
    included) until the test allows them; none is allowed at first. Leaving opens the gate,
    so that a server stopped afterwards is not kept waiting."""
    steps = StepFile(path)
    release = hold_forward_passes(path)
    try:
        yield steps
    finally:
        steps.open()
        release()

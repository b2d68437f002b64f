"""The model's pace in the test's hands, for a test that must catch a reply mid-way.

While a gate is installed, every forward pass of a language model waits until the gate's file
allows it: the file holds how many forward passes may have run so far in total, or "open"; the
hook writes how many have run to the file's ".count" sibling. The test writes the allowance
(StepFile) and so decides how far a reply gets, however fast or slow the machine is. A file
serves every kind of server: those in the test's own process (`forward_gate`) and subprocesses
(`wxgpt serve` in tests/replica_process.py, `transformers serve` in tests/serve_engine.py),
which call `hold_if_asked` first.
"""

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

GATE_ENV = "WXGPT_TEST_GATE_FILE"
POLL_S = 0.005


class StepFile:
    """The test's side of the gate: how many forward passes the server may run."""

    def __init__(self, path: Path, allowed: int = 0) -> None:
        self.path = path
        # A count left by an earlier process on this file would be taken for this one's.
        self.path.with_suffix(".count").unlink(missing_ok=True)
        self.allow_total(allowed)

    def allow_total(self, steps: int) -> None:
        """Let the server run `steps` forward passes in all (prefills count as one each)."""
        self._write(str(steps))

    def passes(self) -> int:
        """How many forward passes the server has run."""
        try:
            return int(self.path.with_suffix(".count").read_text() or 0)
        except FileNotFoundError:
            return 0

    def allow_more(self, steps: int) -> None:
        """Let the server run `steps` forward passes beyond those it has run."""
        self.allow_total(self.passes() + steps)

    def open(self) -> None:
        """No more waiting."""
        self._write("open")

    def _write(self, value: str) -> None:
        staging = self.path.with_suffix(".tmp")
        staging.write_text(value)
        staging.replace(self.path)


def hold_forward_passes(path: Path) -> RemovableHandle:
    """Make every forward pass of a language model in this process wait until the file at
    `path` allows it; remove the returned handle to stop."""
    lock = threading.Lock()
    passes = 0
    count = path.with_suffix(".count")

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

    return torch.nn.modules.module.register_module_forward_pre_hook(wait_for_the_gate)


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
    handle = hold_forward_passes(path)
    try:
        yield steps
    finally:
        steps.open()
        handle.remove()

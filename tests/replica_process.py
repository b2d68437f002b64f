"""`python -m tests.replica_process serve …`: the real `wxgpt` command, for tests that run
several server processes, with the model's pace in the test's hands.

With WXGPT_TEST_GATE_FILE set, every forward pass of the language model waits until the
file allows it: the file holds how many forward passes may have run so far in total, or
"open"; the server writes how many have run to the file's ".count" sibling. The test writes
the allowance (StepFile below) and so decides how far a reply gets, however fast or slow
the machine is.
"""

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

GATE_ENV = "WXGPT_TEST_GATE_FILE"
POLL_S = 0.005


class StepFile:
    """The test's side of the gate: how many forward passes the server may run."""

    def __init__(self, path: Path, allowed: int = 0) -> None:
        self.path = path
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


def _install_gate(path: Path) -> None:
    import torch

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

    torch.nn.modules.module.register_module_forward_pre_hook(wait_for_the_gate)


def main() -> None:
    gate = os.environ.get(GATE_ENV)
    if gate:
        _install_gate(Path(gate))
    from server.cli import main as wxgpt

    wxgpt(sys.argv[1:])


if __name__ == "__main__":
    main()

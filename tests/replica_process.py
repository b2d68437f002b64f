"""`python -m tests.replica_process serve …`: the real `wxgpt` command, for tests that run
several server processes, with the model's pace in the test's hands: with WXGPT_TEST_GATE_FILE
set, every forward pass waits until that file allows it (tests/pace.py).
"""

import os
import sys
from pathlib import Path

from tests.pace import GATE_ENV, hold_forward_passes


def main() -> None:
    gate = os.environ.get(GATE_ENV)
    if gate:
        hold_forward_passes(Path(gate))
    from server.cli import main as wxgpt

    wxgpt(sys.argv[1:])


if __name__ == "__main__":
    main()

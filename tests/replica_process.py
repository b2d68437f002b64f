"""`python -m tests.replica_process serve …`: the real `wxgpt` command, for tests that run
several server processes, with the model's pace in the test's hands: with WXGPT_TEST_GATE_FILE
set, every forward pass waits until that file allows it (tests/pace.py).
"""

import sys

from tests.pace import hold_if_asked


def main() -> None:
    hold_if_asked()
    from server.cli import main as wxgpt

    wxgpt(sys.argv[1:])


if __name__ == "__main__":
    main()

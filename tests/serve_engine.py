"""`transformers serve` as the tests run it: the real server, plus one line on stderr when a
generation ends, saying whether it ran to its end or was aborted, and after how many tokens.

The server runs the model in a process of its own, started with multiprocessing's "spawn",
which imports this module there as `__mp_main__`: the hooks go in that process. It aborts a
generation whose client went away by raising from its streamer's `put` at the next token;
the line is how a test sees the engine itself stop. Its forward passes wait on the gate file
that WXGPT_TEST_GATE_FILE names (tests/pace.py).
"""

import sys
from typing import Any

from transformers.cli.serving import utils
from transformers.cli.transformers import main

from tests.pace import hold_if_asked

MARK = "wxgpt-test-engine:"


def _observe_streamer() -> None:
    streamer = utils._TokenStreamer
    put, end = streamer.put, streamer.end

    def generated(self: Any) -> int:
        count: int = getattr(self, "wxgpt_generated", 0)
        return count

    def observed_put(self: Any, value: Any) -> None:
        # The first put is the prompt, which the streamer skips.
        is_prompt = self.prompt
        try:
            put(self, value)
        except utils._GenerationCancelled:
            print(f"{MARK} aborted after {generated(self)} tokens", file=sys.stderr, flush=True)
            raise
        if not is_prompt:
            self.wxgpt_generated = generated(self) + value.numel()

    def observed_end(self: Any) -> None:
        print(f"{MARK} ended after {generated(self)} tokens", file=sys.stderr, flush=True)
        end(self)

    streamer.put = observed_put  # type: ignore[method-assign]
    streamer.end = observed_end  # type: ignore[method-assign]


if __name__ == "__mp_main__":
    hold_if_asked()
    _observe_streamer()

if __name__ == "__main__":
    sys.argv = ["transformers", "serve", *sys.argv[1:]]
    sys.exit(main())

"""A wxgpt server for the mini-program's jest suite: a tiny GPT-2, dev login, a temp SQLite file.

Prints `WXGPT_TEST_SERVER <url>` once /readyz answers 200 and serves until stdin closes.
Run from the repository root: `python -m tests.miniprogram_server`. With WXGPT_TEST_GATE_FILE
set, the model's forward passes wait on that file (tests/pace.py; test/helpers.js writes it).
"""

import sys
import tempfile
from pathlib import Path

from server.chat.settings import save_chat_settings
from server.config import Settings
from server.safety.words import save_words
from tests.live_server import PACED_SETTINGS, LiveServer
from tests.pace import hold_if_asked
from tests.tiny_model import build_tiny_gpt2

# Replies of many pieces (the gate holds one mid-way for a drop or a stop); few replies per
# user so the quota can run out in a test; a low message limit so "too long" is cheap to reach;
# small checked pieces so a reply arrives in many; one listed word for the content checks.
CHAT_SETTINGS = {"temperature": 0, "max_new_tokens": 80}
DEFAULT_QUOTA = 3
MAX_MESSAGE_CHARS = 200
LISTED_WORDS = ["forbiddenword"]


def main() -> None:
    """Build the model, start the server, print its address, serve until stdin closes."""
    hold_if_asked()
    with tempfile.TemporaryDirectory(prefix="wxgpt-miniprogram-") as scratch:
        root = Path(scratch)
        model = build_tiny_gpt2(root / "tiny-gpt2")
        settings = Settings(
            _env_file=None,
            db_url=f"sqlite://{root / 'wxgpt.sqlite3'}",
            model=str(model),
            dev_login=True,
            default_quota=DEFAULT_QUOTA,
            max_message_chars=MAX_MESSAGE_CHARS,
            max_concurrent_generations=2,
            **PACED_SETTINGS,
        )
        server = LiveServer(settings).start()
        try:
            server.call(save_chat_settings(CHAT_SETTINGS))
            server.call(save_words(LISTED_WORDS))
            print(f"WXGPT_TEST_SERVER {server.url}", flush=True)
            sys.stdin.read()
        finally:
            server.stop()


if __name__ == "__main__":
    main()

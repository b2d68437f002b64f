from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.chat_settings import save_chat_settings
from server.config import Settings
from tests.live_server import LiveServer

ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def start_server(tiny_model: Path, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers on a SQLite file in tmp_path; greedy, short replies unless told otherwise."""
    running: list[LiveServer] = []

    def start(
        chat: dict[str, Any] | None = None, db_name: str = "wxgpt.sqlite3", **overrides: Any
    ) -> LiveServer:
        values: dict[str, Any] = {
            "db_url": f"sqlite://{tmp_path / db_name}",
            "model": str(tiny_model),
            "dev_login": True,
            "default_quota": 100,
            "max_concurrent_generations": 2,
            **overrides,
        }
        server = LiveServer(Settings(_env_file=None, **values)).start()
        running.append(server)
        server.call(save_chat_settings({"temperature": 0, "max_new_tokens": 12, **(chat or {})}))
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def server(start_server: ServerFactory) -> LiveServer:
    return start_server()

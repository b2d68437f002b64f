from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import LiveServer, start_test_server
from tests.pace import StepFile, forward_gate

ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def start_server(tiny_model: Path, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers on a SQLite file in tmp_path; greedy, short replies unless told otherwise."""
    running: list[LiveServer] = []

    def start(
        chat: dict[str, Any] | None = None, db_name: str = "wxgpt.sqlite3", **overrides: Any
    ) -> LiveServer:
        model = Path(overrides.pop("model", tiny_model))
        server = start_test_server(model, tmp_path / db_name, chat, **overrides)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def server(start_server: ServerFactory) -> LiveServer:
    return start_server()


@pytest.fixture
def gate(start_server: ServerFactory, tmp_path: Path) -> Iterator[StepFile]:
    """Holds every forward pass of the test's servers until the test allows it (none at
    first). It depends on start_server so that it opens before the servers stop."""
    with forward_gate(tmp_path / "forward.gate") as steps:
        yield steps

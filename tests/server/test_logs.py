"""Log lines of a real server carry the socket id (and reply id) that ties a reply together."""

import io
import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from server import logs
from server.logs import log_handler
from tests.live_server import LiveServer, chat_frame, closed_with, open_chat, recv, recv_until
from tests.serve_ready import ready_as
from tests.server.test_cli import WXGPT, free_port


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the root logger writes as JSON lines while the test runs."""
    stream = io.StringIO()
    handler = log_handler(json_lines=True, stream=stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_json_lines_tie_a_reply_to_its_socket(
    server: LiveServer, json_log: io.StringIO
) -> None:
    admin = server.admin_login()
    token, user_id = server.login_user("logged")
    ws, _ = await open_chat(server, token)
    await ws.send(chat_frame("hello"))
    done = (await recv_until(ws, "done"))[-1]
    socket_id = server.get("/api/ops/snapshot", admin).json()["sockets"][0]["id"]
    await ws.close()
    await server.ops_snapshot_until(admin, lambda s: not s["sockets"])

    lines = lines_of(json_log)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    mine = [line for line in lines if line.get("socket_id") == socket_id]
    messages = [line["message"] for line in mine]
    assert f"chat socket opened by user {user_id} from 127.0.0.1" in messages[0]
    assert messages[-1].startswith("chat socket closed: ")
    reply_lines = [line for line in mine if line.get("reply_id") == done["message_id"]]
    assert any(
        line["logger"] == "server.chat.replies" and "complete" in line["message"]
        for line in reply_lines
    )
    admin_lines = [line for line in lines if "socket_id" not in line]
    assert admin_lines, "lines outside a chat socket carry no socket id"


def test_text_lines_name_the_replica_socket_and_reply() -> None:
    logs.set_replica("r-7")
    stream = io.StringIO()
    handler = log_handler(json_lines=False, stream=stream)
    logger = logging.getLogger("wxgpt.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    socket_token = logs.socket_id.set("abc123")
    reply_token = logs.reply_id.set(42)
    try:
        logger.info("one event")
    finally:
        logs.reply_id.reset(reply_token)
        logs.socket_id.reset(socket_token)
        logger.removeHandler(handler)
    assert "wxgpt.test [replica=r-7 socket=abc123 reply=42]: one event" in stream.getvalue()


def test_serve_writes_json_lines_with_wxgpt_log_json(tmp_path: Path, tiny_model: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "WXGPT_DB_URL": f"sqlite://{tmp_path / 'serve.sqlite3'}",
        "WXGPT_DEV_LOGIN": "1",
        "WXGPT_PORT": str(port),
        "WXGPT_MODEL": str(tiny_model),
        "WXGPT_LOG_JSON": "1",
        "WXGPT_REPLICA_ID": "replica-a",
    }
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        process = subprocess.Popen([*WXGPT, "serve"], env=env, stderr=stderr, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready_as(url, "replica-a"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        chat = subprocess.run(
            [*WXGPT, "chat", "--url", url, "hello"], env=env, capture_output=True, timeout=120
        )
        assert chat.returncode == 0, chat.stderr
    finally:
        process.terminate()
        process.wait(timeout=30)

    text = log.read_text()
    # Model loading draws progress bars on stderr too; those are not log lines.
    assert not re.search(r"^\d{4}-\d\d-\d\d .* (INFO|WARNING|ERROR) ", text, re.MULTILINE)
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    loggers = {line["logger"] for line in lines}
    assert {"server.app", "server.chat.socket", "server.chat.replies"} <= loggers
    opened = next(line for line in lines if line["message"].startswith("chat socket opened"))
    reply = next(line for line in lines if line["logger"] == "server.chat.replies")
    assert reply["socket_id"] == opened["socket_id"]
    assert isinstance(reply["reply_id"], int)
    assert {line.get("replica_id") for line in lines} == {"replica-a"}


async def test_tokens_and_tickets_never_reach_the_log(
    server: LiveServer, json_log: io.StringIO
) -> None:
    token = server.login("logged")
    admin = server.admin_login()
    # Old clients may still put a token in the URL: refused, and not logged either.
    httpx.get(f"{server.url}/api/me?token={token}&x=1")
    ticket = httpx.post(
        server.url + "/api/ws-ticket", headers={"Authorization": f"Bearer {token}"}
    ).json()["ticket"]
    async with connect(f"{server.ws_url}?ticket={ticket}") as ws:
        await recv(ws)
    async with connect(f"{server.ws_url}?token={token}") as ws:
        await closed_with(ws)
    ops_ticket = httpx.post(
        server.url + "/api/admin/ws-ticket",
        json={"socket": "ops"},
        headers={"Authorization": f"Bearer {admin}"},
    ).json()["ticket"]
    async with connect(f"ws://127.0.0.1:{server.port}/ws/ops?ticket={ops_ticket}") as ws:
        await recv(ws)
    # The test's own HTTP client logs its requests too; only the server's lines count.
    text = "\n".join(line["message"] for line in lines_of(json_log) if line["logger"] != "httpx")
    assert "/api/me?token=[redacted]&x=1" in text, "the access log line is still written"
    assert "/ws/chat?ticket=[redacted]" in text
    for secret in (token, admin, ticket, ops_ticket):
        assert secret not in text

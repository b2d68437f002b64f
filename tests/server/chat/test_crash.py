"""A server killed with SIGKILL mid-reply keeps what it had streamed: after a restart the
reply is stored interrupted with its saved text and refunded, and a client that resumes with
more than was saved gets the end of it, marked interrupted."""

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.live_server import chat_frame, passes_for_deltas, recv, recv_until
from tests.replicas import (
    PACED,
    ReplicaProcess,
    eventually,
    open_chat,
    stored_reply,
    text_at_the_gate,
)

pytestmark = pytest.mark.timeout(300)


async def test_kill_9_mid_reply_keeps_the_streamed_text_and_refunds(
    tmp_path: Path, tiny_model: Path
) -> None:
    env = {
        **os.environ,
        "WXGPT_DB_URL": f"sqlite://{tmp_path / 'crash.sqlite3'}",
        "WXGPT_MODEL": str(tiny_model),
        "WXGPT_DEV_LOGIN": "1",
        "WXGPT_DEFAULT_QUOTA": "10",
        "WXGPT_LEASE_SECONDS": "2",
        "WXGPT_REPLY_SAVE_INTERVAL": "0.1",
        **PACED,
    }
    first = ReplicaProcess("first", tmp_path, env)
    passes = 1 + passes_for_deltas(1)  # the prefill and a piece's steps; then the reply waits
    first.gate.allow_more(passes)
    first.start()
    token, _ = first.login_user("ivan")
    ws = await open_chat(first, token)
    await ws.send(chat_frame("a story, please"))
    start = await recv(ws)
    received = await text_at_the_gate(ws, first.gate, passes)
    assert received
    conversation = start["conversation_id"]
    await eventually(lambda: stored_reply(first, token, conversation)["content"] == received)

    first.kill()
    again = ReplicaProcess("again", tmp_path, env)
    again.gate.open()
    again.start()
    try:
        reply = await eventually(
            lambda: (
                (r := stored_reply(again, token, conversation))
                and r["status"] == "interrupted"
                and r
            ),
        )
        assert (reply["content"], reply["finish_reason"]) == (received, "interrupted")
        me = httpx.get(again.url + "/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["quota"] == 10, "the reply the server lost was refunded"

        resumed = await open_chat(again, token)
        for offset, rest in ((0, received), (len(received), ""), (len(received) + 7, "")):
            resume = {"type": "resume", "message_id": start["message_id"], "offset": offset}
            await resumed.send(json.dumps(resume))
            frames = await recv_until(resumed, "done")
            assert "".join(f.get("text", "") for f in frames if f["type"] == "delta") == rest
            assert frames[-1]["finish_reason"] == "interrupted"
        await resumed.close()
    finally:
        again.stop()

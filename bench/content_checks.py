"""Content checks: the first-token delay that releasing replies in checked pieces adds.

The server sends `start` just before the engine begins, and the engine records when its
first token came (the stored `first_token_ms`), so for each reply

    added = (first delta − start, at the client) − first_token_ms

is the time the first piece was held back (waiting for a sentence end or the piece limit)
plus its check; the socket's own latency is in both frames and cancels out. Measured with
the word list alone (1,000 words) and with WeChat's check on a loopback stand-in.
"""

import asyncio
import json
import sqlite3
import statistics
import time
import uuid
from datetime import UTC, datetime

import httpx

from bench.harness import Server
from tests.wechat_api import WeChatApi

QUESTIONS = [
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Name three colours of the rainbow.",
    "Why is the sky blue?",
]
WORDS = [f"listedword{n:04d}" for n in range(1000)]


def _store_words(server: Server) -> None:
    """Put the word list in the server's database before its first check reads it."""
    database = server.env["WXGPT_DB_URL"].removeprefix("sqlite://")
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)",
            ("moderation.words", json.dumps(WORDS), datetime.now(UTC).isoformat()),
        )


async def _replies(server: Server, questions: list[str]) -> list[tuple[float, float, int]]:
    """(start → first delta s, engine first token s, first piece chars) per question."""
    token = server.login()
    rows = []
    async with server.connect(token) as ws:
        await ws.recv()
        for question in questions:
            frame = {
                "type": "chat",
                "conversation_id": None,
                "content": question,
                "client_msg_id": str(uuid.uuid4()),
            }
            await ws.send(json.dumps(frame))
            started = first = None
            first_piece, conversation = "", 0
            while True:
                reply = json.loads(await ws.recv())
                if reply["type"] == "start":
                    started, conversation = time.perf_counter(), reply["conversation_id"]
                elif reply["type"] == "delta" and first is None:
                    first, first_piece = time.perf_counter(), reply["text"]
                elif reply["type"] in ("done", "error"):
                    break
            if started is None or first is None:
                raise RuntimeError(f"reply to {question!r} had no text: {reply}")
            async with httpx.AsyncClient() as client:
                answer = await client.get(
                    f"{server.url}/api/conversations/{conversation}/messages",
                    headers={"Authorization": f"Bearer {token}"},
                )
            messages = answer.json()["items"]
            engine_first = messages[-1]["first_token_ms"] / 1000
            rows.append((first - started, engine_first, len(first_piece)))
    return rows[1:]  # the first reply warms the model up


def run(quick: bool) -> list[dict[str, str]]:
    """Median added first-token delay with the word list alone and with WeChat's check."""
    questions = [QUESTIONS[0], *QUESTIONS[: 2 if quick else 4]]
    chat = {"temperature": 0, "max_new_tokens": 24 if quick else 64}
    wechat = WeChatApi().start()
    results = []
    try:
        setups = [
            ("word list (1,000 words)", {}),
            ("word list + WeChat (loopback stand-in)", wechat.settings()),
        ]
        for name, env in setups:
            with Server({key.upper(): str(v) for key, v in _env(env).items()}, chat) as server:
                _store_words(server)
                results.append((name, asyncio.run(_replies(server, questions))))
    finally:
        wechat.stop()
    rows = []
    for name, replies in results:
        seen = statistics.median(row[0] for row in replies)
        engine = statistics.median(row[1] for row in replies)
        added = statistics.median(row[0] - row[1] for row in replies)
        rows.append(
            {
                "checks": name,
                "engine first token ms": f"{engine * 1000:.0f}",
                "first delta after start ms": f"{seen * 1000:.0f}",
                "added ms": f"{added * 1000:.0f}",
                "added / engine first token": f"{added / engine:.2f}",
                "first piece chars": f"{statistics.median(row[2] for row in replies):.0f}",
                "replies": str(len(replies)),
            }
        )
    return rows


def _env(settings: dict[str, object]) -> dict[str, object]:
    return {f"WXGPT_{key}": value for key, value in settings.items()}

"""Coordination: what one replica asks of Redis, and how many replicas one Redis carries.

A replica runs on a Redis of its own (a private redis-server on a free port, so its command
counts are the replica's alone) while sockets sit idle and while replies stream; Redis's
own `INFO commandstats` counts the commands. redis-benchmark then measures what that Redis
answers per second on this machine, with the same mix of commands, pipelined as the
replica pipelines them, which divided by one replica's rate says how many replicas it
carries.
"""

import asyncio
import csv
import io
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from bench.harness import Server, ask
from tests.redis_server import PrivateRedis
from tests.tiny_model import build_tiny_gpt2

QUESTION = "tell me a long story"


def _commands(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(int(entry["calls"]) for entry in stats.values())


async def _idle(server: Server, sockets: int, seconds: float) -> None:
    token = server.login()
    connections = [await server.connect(token) for _ in range(sockets)]
    for ws in connections:
        await ws.recv()
    await asyncio.sleep(seconds)
    for ws in connections:
        await ws.close()


async def _chatting(server: Server, replies: int) -> tuple[float, int]:
    tokens = [server.login() for _ in range(replies)]
    connections = [await server.connect(token) for token in tokens]
    for ws in connections:
        await ws.recv()
    started = time.perf_counter()
    timings = await asyncio.gather(*(ask(ws, QUESTION) for ws in connections))
    elapsed = time.perf_counter() - started
    for ws in connections:
        await ws.close()
    return elapsed, sum(timing.completion_tokens for timing in timings)


def _redis_capacity(port: int) -> float:
    """Requests per second the Redis answers with 16 pipelined clients (redis-benchmark)."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return float("nan")
    options = ["--csv", "-n", "200000", "-P", "16", "-c", "16", "-t", "set,get,incr,hset,publish"]
    done = subprocess.run(
        [binary, "-p", str(port), *options],
        capture_output=True,
        text=True,
        check=False,
    )
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    rates = [float(row["rps"]) for row in rows]
    return sum(rates) / len(rates) if rates else float("nan")


def run(quick: bool) -> list[dict[str, str]]:
    """Redis commands per second of one replica idle and chatting; replicas per Redis."""
    idle_sockets, replies, seconds = (100, 4, 5.0) if quick else (1000, 16, 20.0)
    with tempfile.TemporaryDirectory() as folder:
        private = PrivateRedis(Path(folder)).start()
        try:
            model = build_tiny_gpt2(Path(folder) / "model")
            env = {
                "WXGPT_MODEL": str(model),
                "WXGPT_REDIS_URL": private.url,
                "WXGPT_MAX_CONCURRENT_GENERATIONS": str(replies),
            }
            chat = {"temperature": 0, "max_new_tokens": 256}
            with Server(env, chat) as server:
                time.sleep(2)
                before = _commands(private.url)
                asyncio.run(_idle(server, idle_sockets, seconds))
                idle_rate = (_commands(private.url) - before) / seconds
                before = _commands(private.url)
                elapsed, tokens = asyncio.run(_chatting(server, replies))
                chat_rate = (_commands(private.url) - before) / elapsed
            capacity = _redis_capacity(private.port)
        finally:
            private.stop()
    busiest = idle_rate + chat_rate
    return [
        {
            "replica state": f"{idle_sockets} idle sockets",
            "Redis commands/s": f"{idle_rate:.1f}",
            "per token": "",
        },
        {
            "replica state": f"{replies} replies streaming ({tokens / elapsed:.0f} tokens/s)",
            "Redis commands/s": f"{chat_rate:.1f}",
            "per token": f"{chat_rate / (tokens / elapsed):.3f}",
        },
        {
            "replica state": "Redis on this machine, redis-benchmark, 16 pipelined clients",
            "Redis commands/s": f"{capacity:.0f}",
            "per token": f"replicas per Redis, all busy: {capacity / busiest:.0f}",
        },
    ]

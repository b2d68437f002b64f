"""Idle scale: how many open, heart-beating chat sockets one server holds, and their memory."""

import asyncio
import itertools
import json
import random
import resource
import time
from typing import Any

from bench.harness import Server, percentile

USERS = 100
OPEN_AT_ONCE = 200


def raise_fd_limit() -> int:
    """Lift this process's open-file limit (inherited by the server) to the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def _open(server: Server, tokens: list[str], count: int) -> list[Any]:
    opened: list[Any] = []
    for start in range(0, count, OPEN_AT_ONCE):
        batch = [
            server.connect(tokens[i % len(tokens)])
            for i in range(start, min(count, start + OPEN_AT_ONCE))
        ]
        try:
            connections = await asyncio.gather(*batch)
        except OSError as exc:
            print(f"  stopped opening at {len(opened)} sockets: {exc}")
            break
        for ws in connections:
            await ws.recv()  # ready
        opened.extend(connections)
    return opened


async def _heartbeat(ws: Any, seconds: float, rtts: list[float], lost: list[int]) -> None:
    await asyncio.sleep(random.uniform(0, 5))
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sent = time.perf_counter()
        await ws.send(json.dumps({"type": "ping"}))
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert frame == {"type": "pong"}
            rtts.append(time.perf_counter() - sent)
        except TimeoutError:
            lost.append(1)
        await asyncio.sleep(5)


async def _watch_ops(server: Server, admin: str, seconds: float) -> list[float]:
    """Arrival times of /ws/ops frames over `seconds`, the panel's view under this load."""
    arrivals: list[float] = []
    async with server.connect(admin, "/ws/ops") as ops:
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0:
            try:
                await asyncio.wait_for(ops.recv(), left)
            except TimeoutError:
                break
            arrivals.append(time.perf_counter())
    return arrivals


def _ops_row(arrivals: list[float], seconds: float) -> str:
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    if not gaps:
        return f"{len(arrivals)} frames in {seconds:.0f} s"
    return (
        f"{len(arrivals)} frames in {seconds:.0f} s; gap p50 {percentile(gaps, 50):.2f} s, "
        f"max {max(gaps):.2f} s"
    )


async def _measure(server: Server, count: int, seconds: float) -> dict[str, str]:
    admin = server.admin_session()
    tokens = [server.login() for _ in range(USERS)]
    before = server.rss_bytes()
    started = time.perf_counter()
    sockets = await _open(server, tokens, count)
    open_s = time.perf_counter() - started
    rtts: list[float] = []
    lost: list[int] = []
    heartbeats = asyncio.gather(*(_heartbeat(ws, seconds, rtts, lost) for ws in sockets))
    arrivals, _ = await asyncio.gather(_watch_ops(server, admin, seconds), heartbeats)
    after = server.rss_bytes()
    await asyncio.gather(*(ws.close() for ws in sockets))
    return {
        "open sockets": str(len(sockets)),
        "goal": str(count),
        "seconds to open": f"{open_s:.1f}",
        "pings answered": f"{len(rtts)} of {len(rtts) + len(lost)}",
        "ping rtt p95 ms": f"{percentile(rtts, 95) * 1000:.1f}",
        "server RSS MB (before → after)": f"{before / 2**20:.0f} → {after / 2**20:.0f}",
        "KB per socket": f"{(after - before) / max(1, len(sockets)) / 1024:.1f}",
        "ops panel (/ws/ops) meanwhile": _ops_row(arrivals, seconds),
    }


def run(quick: bool) -> list[dict[str, str]]:
    """Open the sockets, heart-beat them, read the server's memory."""
    limit = raise_fd_limit()
    # Client and server each hold one descriptor per socket, plus some spare.
    count = min(1000 if quick else 10_000, limit - 500)
    with Server({"WXGPT_ENGINE": "single"}, {}) as server:
        row = asyncio.run(_measure(server, count, 10 if quick else 20))
    return [row]

"""Concurrency: N sockets chat at once; both engines side by side."""

import asyncio
import time

from bench.harness import Server, ask, percentile

QUESTIONS = [
    "What is the capital of France?",
    "Tell me a short story about a cat.",
    "How do I boil an egg?",
    "Name three colours of the rainbow.",
    "Why is the sky blue?",
    "Write one sentence about the sea.",
    "What is two plus two?",
    "Give me a tip for learning Chinese.",
]


async def _round(server: Server, sockets: int) -> dict[str, float]:
    tokens = [server.login() for _ in range(sockets)]
    connections = [await server.connect(token) for token in tokens]
    try:
        for ws in connections:
            await ws.recv()
        started = time.perf_counter()
        timings = await asyncio.gather(
            *(ask(ws, QUESTIONS[i % len(QUESTIONS)]) for i, ws in enumerate(connections))
        )
        ended = time.perf_counter()
    finally:
        for ws in connections:
            await ws.close()
    total = sum(timing.completion_tokens for timing in timings)
    first = [timing.first_token_s for timing in timings]
    gaps = [gap for timing in timings for gap in timing.gaps]
    return {
        "tok/s": total / (ended - started),
        "ttft p50": percentile(first, 50),
        "ttft p95": percentile(first, 95),
        "gap p95": percentile(gaps, 95),
    }


def run(quick: bool) -> list[dict[str, str]]:
    """One row per socket count: aggregate tokens/s, TTFT p50/p95, p95 gap, for both engines."""
    levels = [1, 4, 16] if quick else [1, 4, 16, 64]
    max_new = 12 if quick else 32
    chat = {"temperature": 0, "repetition_penalty": 1.1, "max_new_tokens": max_new}
    results: dict[str, dict[int, dict[str, float]]] = {}
    for engine in ("single", "batched"):
        env = {
            "WXGPT_ENGINE": engine,
            "WXGPT_MAX_CONCURRENT_GENERATIONS": str(max(levels)),
            "WXGPT_MAX_QUEUE": str(max(levels)),
        }
        with Server(env, chat) as server:
            asyncio.run(_round(server, 1))  # warm-up
            results[engine] = {n: asyncio.run(_round(server, n)) for n in levels}
    rows = []
    for n in levels:
        single, batched = results["single"][n], results["batched"][n]
        row = {"sockets": str(n)}
        for measure in ("tok/s", "ttft p50", "ttft p95", "gap p95"):
            row[f"{measure} single"] = f"{single[measure]:.2f}"
            row[f"{measure} batched"] = f"{batched[measure]:.2f}"
        row["tok/s batched/single"] = f"{batched['tok/s'] / single['tok/s']:.2f}"
        rows.append(row)
    return rows

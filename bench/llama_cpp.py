"""llama.cpp: `llama-server` driven directly against wxgpt in front of it (the remote engine),
at 1 and 16 streams, on the same server in the same run.

Both paths ask the same questions, greedy, of the same slots; `--ignore-eos` makes every reply
exactly `max_tokens` long, so the two deliver the same tokens and only the path differs.
Needs `make llama-server`.
"""

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.concurrency import QUESTIONS
from bench.harness import ReplyTiming, Server, ask, percentile
from generation.default_model import DEFAULT_MODEL, default_gguf
from tests.llama_server import BUILD_HINT, LlamaServer, llama_server_binary

STREAMS = (1, 16)
SLOT_CONTEXT = 1024
Round = Callable[[int], Awaitable[list[ReplyTiming]]]


async def _direct_reply(
    client: httpx.AsyncClient, llama: LlamaServer, question: str, max_tokens: int
) -> ReplyTiming:
    """One streamed chat completion straight from llama-server, timed like a socket's reply."""
    body = {
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    timing = ReplyTiming(sent=time.perf_counter())
    async with client.stream("POST", llama.url + "/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                timing.arrivals.append(time.perf_counter())
            if chunk.get("usage"):
                timing.completion_tokens = chunk["usage"]["completion_tokens"]
                timing.prompt_tokens = chunk["usage"]["prompt_tokens"]
    timing.ended = time.perf_counter()
    return timing


def _direct(llama: LlamaServer, max_tokens: int) -> Round:
    async def run(streams: int) -> list[ReplyTiming]:
        async with httpx.AsyncClient(timeout=None) as client:
            return await asyncio.gather(
                *(
                    _direct_reply(client, llama, QUESTIONS[i % len(QUESTIONS)], max_tokens)
                    for i in range(streams)
                )
            )

    return run


def _through_wxgpt(server: Server) -> Round:
    async def run(streams: int) -> list[ReplyTiming]:
        connections = [await server.connect(server.login()) for _ in range(streams)]
        try:
            for ws in connections:
                await ws.recv()
            return await asyncio.gather(
                *(ask(ws, QUESTIONS[i % len(QUESTIONS)]) for i, ws in enumerate(connections))
            )
        finally:
            for ws in connections:
                await ws.close()

    return run


def _measure(run: Round, streams: int) -> dict[str, float]:
    started = time.perf_counter()
    timings = asyncio.run(run(streams))
    elapsed = time.perf_counter() - started
    first = [timing.first_token_s for timing in timings]
    return {
        "tok/s": sum(timing.completion_tokens for timing in timings) / elapsed,
        "ttft p50": percentile(first, 50),
        "ttft p95": percentile(first, 95),
        "gap p95": percentile([gap for timing in timings for gap in timing.gaps], 95),
    }


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _bench_model(binary: Path, name: str, quick: bool) -> list[dict[str, str]]:
    gguf = default_gguf(name)
    max_tokens = 16 if quick else 64
    repeats = 1 if quick else 3
    log = Path(tempfile.mkdtemp(prefix="wxgpt-llama-")) / "llama-server.log"
    llama = LlamaServer(
        binary,
        gguf,
        log,
        parallel=max(STREAMS),
        context=SLOT_CONTEXT * max(STREAMS),
        threads=2,
        extra=["--ignore-eos"],
    ).start()
    env = {
        "WXGPT_INFERENCE_URL": llama.url,
        "WXGPT_MODEL": str(gguf),
        "WXGPT_INFERENCE_CONTEXT_SIZE": str(SLOT_CONTEXT),
        "WXGPT_MAX_CONCURRENT_GENERATIONS": str(max(STREAMS)),
        "WXGPT_MAX_QUEUE": str(max(STREAMS)),
    }
    chat = {"temperature": 0, "repetition_penalty": 1.0, "max_new_tokens": max_tokens}
    try:
        with Server(env, chat) as server:
            paths = {"direct": _direct(llama, max_tokens), "wxgpt": _through_wxgpt(server)}
            for run in paths.values():
                _measure(run, 1)  # warm-up: connections, the server's caches
            # Alternated, so that a change in the machine's load hits both paths alike.
            results: dict[tuple[str, int], list[dict[str, float]]] = {}
            for _ in range(repeats):
                for streams in STREAMS:
                    for path, run in paths.items():
                        results.setdefault((path, streams), []).append(_measure(run, streams))
            memory = f"{_rss_mib(llama.pid):.0f} + {server.rss_bytes() / 2**20:.0f}"
    finally:
        llama.stop()
    rows = []
    for streams in STREAMS:
        direct = _median(results[("direct", streams)])
        wxgpt = _median(results[("wxgpt", streams)])
        rows.append(
            {
                "model": gguf.name,
                "streams": str(streams),
                "tok/s direct": f"{direct['tok/s']:.1f}",
                "tok/s wxgpt": f"{wxgpt['tok/s']:.1f}",
                "tok/s wxgpt/direct": f"{wxgpt['tok/s'] / direct['tok/s']:.2f}",
                "ttft p50 direct": f"{direct['ttft p50']:.3f}",
                "ttft p50 wxgpt": f"{wxgpt['ttft p50']:.3f}",
                "ttft wxgpt/direct": f"{wxgpt['ttft p50'] / direct['ttft p50']:.2f}",
                "ttft p95 wxgpt": f"{wxgpt['ttft p95']:.3f}",
                "gap p95 direct": f"{direct['gap p95']:.3f}",
                "gap p95 wxgpt": f"{wxgpt['gap p95']:.3f}",
                "RSS MiB llama-server + wxgpt": memory,
            }
        )
    return rows


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def run(quick: bool) -> list[dict[str, str]]:
    """One row per model and stream count; --quick: SmolLM2 only, short replies, one round."""
    binary = llama_server_binary()
    if binary is None:
        return [{"skipped": BUILD_HINT}]
    models = ["smollm2"] if quick else ["smollm2", DEFAULT_MODEL]
    return [row for name in models for row in _bench_model(binary, name, quick)]

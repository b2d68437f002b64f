"""Long prompt: one user sends the longest message allowed while another is mid-reply.

Measures the other user's gaps between deltas (before, while and after the long prompt is
prefilled), the long reply's first token, and the server's memory before, at its peak and
after both replies ended; with the prefill in chunks (the default, and smaller ones) and in
one piece (a chunk as long as the context), in the same run.

The server releases text in checked pieces of at least 8 characters, so a socket's gap spans
the tokens of one piece. The same scene is also played in this process on the batched engine
alone, timing each of the other reply's tokens: its longest gap between tokens is what a
delta's gap was before replies went out in checked pieces.
"""

import asyncio
import itertools
import math
import os
import statistics
import time

from bench.harness import ReplyTiming, Server, ask, status_kib
from generation.engines.base import PreparedReply
from generation.engines.batched import BatchingEngine
from generation.loading import LoadedModel, load_model, load_tokenizer
from generation.model_spec import ModelSpec
from generation.prompts import Turn
from generation.sampling import SamplingParams
from generation.stopping import CancelToken

# Rare CJK characters (U+20000 on): several tokens each, the message that stalled everyone.
RARE = "\U00020000\U00020001\U00020002\U00020003"
MAX_TOKENS = 2048
CHARS = 2000


def longest_message(model: str | None) -> tuple[str, int]:
    """The longest message of rare characters within both limits, and its tokens."""
    tokenizer = load_tokenizer(ModelSpec(source=model)).tokenizer

    def tokens(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    low, high = 1, CHARS
    while low < high:
        middle = (low + high + 1) // 2
        if tokens((RARE * CHARS)[:middle]) <= MAX_TOKENS:
            low = middle
        else:
            high = middle - 1
    text = (RARE * CHARS)[:low]
    return text, tokens(text)


def _rss_mib(server: Server, field: str = "VmRSS") -> float:
    assert server.process is not None
    return status_kib(server.process.pid, field) / 1024


async def _round(server: Server, message: str) -> dict[str, float]:
    connections = [await server.connect(server.login()) for _ in range(2)]
    for ws in connections:
        await ws.recv()
    chatting, sending = connections
    await ask(chatting, "Say hello.")  # warm-up
    before = _rss_mib(server)
    streaming = asyncio.Event()
    story = "Tell me a long story about a cat and a dog."
    other = asyncio.create_task(ask(chatting, story, streaming))
    await streaming.wait()
    await asyncio.sleep(1.0)  # some gaps of the other reply alone
    sent = time.perf_counter()
    long: ReplyTiming = await ask(sending, message)
    timing = await other
    await asyncio.sleep(1.0)
    after = _rss_mib(server)
    for ws in connections:
        await ws.close()
    pairs = list(itertools.pairwise(timing.arrivals))
    first = long.arrivals[0]
    during = [later - earlier for earlier, later in pairs if later > sent and earlier < first]
    before_gaps = [later - earlier for earlier, later in pairs if later <= sent]
    after_gaps = [later - earlier for earlier, later in pairs if earlier >= first]
    return {
        "gap p50 before": statistics.median(before_gaps) if before_gaps else float("nan"),
        "longest gap while prefilling": max(during, default=float("nan")),
        "gap p50 after": statistics.median(after_gaps) if after_gaps else float("nan"),
        "longest gap": max(timing.gaps),
        "long first token": long.first_token_s,
        "rss before": before,
        "rss peak": _rss_mib(server, "VmHWM"),
        "rss after": after,
    }


async def _token_gaps(engine: BatchingEngine, other: list[int], long: list[int]) -> float:
    """The other reply's longest gap between tokens while the long prompt is prefilled."""
    arrivals: list[float] = []
    arrived = asyncio.Event()

    async def note(text: str) -> None:
        arrivals.append(time.perf_counter())
        arrived.set()

    async def ignore(text: str) -> None:
        return None

    async def arrival_after(moment: float) -> None:
        """Until the other reply has a token after `moment`, or has ended."""
        while (not arrivals or arrivals[-1] <= moment) and not streaming.done():
            arrived.clear()
            waiting = asyncio.ensure_future(arrived.wait())
            await asyncio.wait({waiting, streaming}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()

    def reply(ids: list[int], tokens: int) -> PreparedReply:
        return PreparedReply((), ids, SamplingParams(temperature=0, max_new_tokens=tokens))

    await engine.generate(reply(other, 4), CancelToken(), ignore)  # warm-up
    cancel = CancelToken()
    streaming = asyncio.create_task(engine.generate(reply(other, 10_000), cancel, note))
    await arrival_after(0.0)
    await asyncio.sleep(0.5)  # some gaps of the other reply alone
    sent = time.perf_counter()
    result = await engine.generate(reply(long, 1), CancelToken(), ignore)
    first = sent + (result.first_token_s or 0.0)
    await arrival_after(first)
    cancel.cancel()
    await streaming
    pairs = itertools.pairwise(arrivals)
    during = [later - earlier for earlier, later in pairs if later > sent and earlier < first]
    return max(during, default=float("nan"))


def in_engine(loaded: LoadedModel, message: str, chunk: int, seconds: float) -> float:
    """The longest token gap of another reply, on the batched engine in this process."""
    engine = BatchingEngine(
        loaded, slots=2, max_waiting=0, prefill_chunk_tokens=chunk, prefill_chunk_seconds=seconds
    )
    encode = loaded.prompt_format.encode
    other = encode([Turn("user", "Tell me a long story about a cat and a dog.")])
    try:
        return asyncio.run(_token_gaps(engine, other, encode([Turn("user", message)])))
    finally:
        engine.close()
        engine.join()


def run(quick: bool) -> list[dict[str, str]]:
    """One row per prefill mode: the other user's gaps and the server's memory (MiB)."""
    model = os.environ.get("WXGPT_MODEL") or ("smollm2" if quick else None)
    message, tokens = longest_message(model)
    loaded = load_model(ModelSpec(source=model))
    rows = []
    modes = (
        ("chunks of 0.5 s (default)", "512", "0.5"),
        ("chunks of 0.25 s", "512", "0.25"),
        ("one piece", "100000", "0"),
    )
    for label, chunk, seconds in modes:
        env = {
            "WXGPT_MAX_MESSAGE_TOKENS": str(MAX_TOKENS),
            "WXGPT_PREFILL_CHUNK_TOKENS": chunk,
            "WXGPT_PREFILL_CHUNK_SECONDS": seconds,
            # The smallest checked pieces: the other user's gaps then show the engine's steps,
            # not the wait for a sentence end (README: Content safety).
            "WXGPT_OUTPUT_CHECK_CHARS": "8",
            **({"WXGPT_MODEL": model} if model else {}),
        }
        chat = {"temperature": 0, "max_new_tokens": 48 if quick else 128}
        with Server(env, chat) as server:
            result = asyncio.run(_round(server, message))
        row = {"prefill": label, "message": f"{len(message)} chars, {tokens} tokens"}
        # A gap with no pair of arrivals around it: the other reply had ended.
        row.update(
            {
                key: "ended first" if math.isnan(value) else f"{value:.2f}"
                for key, value in result.items()
                if "rss" not in key
            }
        )
        gap = in_engine(loaded, message, int(chunk), float(seconds))
        row["longest token gap in the engine"] = f"{gap:.2f}"
        row.update({f"{key} MiB": f"{value:.0f}" for key, value in result.items() if "rss" in key})
        row["after/before"] = f"{result['rss after'] / result['rss before']:.2f}"
        rows.append(row)
    return rows

"""Engines: every way wxgpt serves a model, against the ceilings of the same machine in the
same run, one table per model; then how the batched engine's cost grows with sockets and
with the length of a conversation.

The ceilings are `model.generate` in this process (one prompt, and a static batch of 16 left-
padded prompts, in the dtype the server loads) and `llama-server` driven directly at 1 and
16 streams (when `make llama-server` built it). wxgpt runs each engine behind `/ws/chat`:
single, batched, and remote in front of that llama-server. A ceiling and the engine measured
against it take turns round by round, asking the same questions: the host's load moves over
minutes, and so would a ratio of rounds run apart. Everything is greedy and stops at the
same length; wxgpt's replies and generate's stop earlier at the model's end of turn, and
tokens/s counts the tokens each path delivered. The servers release
text in the smallest checked pieces (`WXGPT_OUTPUT_CHECK_CHARS=8`, README: Content safety):
their first token is the first delta, which carries a piece of at least 8 characters. So
llama-server direct is also timed to its first 8 characters, what the same user would see
first through wxgpt's checks: the remote engine's own cost is the difference.
"""

import asyncio
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import torch

from bench.harness import ReplyTiming, Server, StepClock, ask, percentile, status_kib
from generation.default_model import DEFAULT_MODEL, default_gguf
from generation.loading import LoadedModel, load_model, load_tokenizer
from generation.model_spec import ModelSpec
from generation.prompts import Turn
from tests.llama_server import BUILD_HINT, LlamaServer, llama_server_binary

# Questions whose answers run past the reply length, so that every path decodes as long.
QUESTIONS = [
    "Tell me a long story about a cat who learns to sail.",
    "Describe, step by step, how to bake bread at home.",
    "Write a long letter to a friend about a trip to the mountains.",
    "Explain in detail why the sky is blue and sunsets are red.",
    "Tell me a long story about a robot who wants to paint.",
    "Describe a busy market in the morning, in many sentences.",
    "Write a long story about two friends lost in a forest.",
    "Explain in detail how a bicycle works, part by part.",
]
BATCH = 16
SCALING = (1, 4, 16, 64)
HISTORY_TOKENS = (100, 500, 2000)
# A message of history is at most this many tokens, well inside the 2000-character limit.
HISTORY_MESSAGE_TOKENS = 300
FILLER = "The quick brown fox jumps over the lazy dog near the river bank. "
# llama.cpp with as many threads as torch has: the same cores for both.
LLAMA_THREADS = int(os.environ.get("WXGPT_BENCH_LLAMA_THREADS", torch.get_num_threads()))
SLOT_CONTEXT = 1024
# Rounds at one stream per round at more (each is a single reply, so one first token).
ONE_STREAM_ROUNDS = 3
# The smallest piece of text the servers release (WXGPT_OUTPUT_CHECK_CHARS).
PIECE_CHARS = 8
Round = Callable[[list[str]], Coroutine[Any, Any, list[ReplyTiming]]]
# One path's round at a number of streams, asking the questions of a tag.
Measure = Callable[[int, str], "Measured"]
Goals = list[dict[str, str]]


@dataclass
class DirectTiming(ReplyTiming):
    """A reply straight from llama-server, also timed to its first PIECE_CHARS characters (a
    shorter reply: to its end, when wxgpt would release it whole)."""

    piece_at: float | None = None


@dataclass
class Measured:
    """One path at one number of streams: the figures of its table row."""

    tok_s: float
    ttft_p50: float
    ttft_p95: float
    gap_p95: float
    memory_mib: str
    # Seconds to the first PIECE_CHARS characters, where a path's first token may be fewer.
    piece_p50: float | None = None

    @classmethod
    def of(cls, timings: list[ReplyTiming], memory_mib: str) -> "Measured":
        """From the first question sent to the last reply ended: connecting is not counted."""
        first = [timing.first_token_s for timing in timings]
        pieces = [
            t.piece_at - t.sent
            for t in timings
            if isinstance(t, DirectTiming) and t.piece_at is not None
        ]
        elapsed = max(timing.ended for timing in timings) - min(t.sent for t in timings)
        return cls(
            tok_s=sum(timing.completion_tokens for timing in timings) / elapsed,
            ttft_p50=percentile(first, 50),
            ttft_p95=percentile(first, 95),
            gap_p95=percentile([gap for timing in timings for gap in timing.gaps], 95),
            memory_mib=memory_mib,
            piece_p50=percentile(pieces, 50) if pieces else None,
        )


def questions(streams: int, tag: str) -> list[str]:
    """`streams` questions, each starting with `tag`: the paths compared in a round get the
    same tag, hence the same replies; each round's own."""
    return [f"[{tag}.{i}] {QUESTIONS[i % len(QUESTIONS)]}" for i in range(streams)]


def _generate(loaded: LoadedModel, prompts: list[str], max_new: int) -> Measured:
    """`model.generate` on these prompts as one left-padded batch, timed like sockets."""
    stop = loaded.prompt_format.stop_token_ids
    encoded = [loaded.prompt_format.encode([Turn("user", prompt)]) for prompt in prompts]
    width = max(len(ids) for ids in encoded)
    pads = [width - len(ids) for ids in encoded]
    ids = torch.tensor([[stop[0]] * pad + own for pad, own in zip(pads, encoded, strict=True)])
    mask = torch.tensor(
        [[0] * pad + [1] * len(own) for pad, own in zip(pads, encoded, strict=True)]
    )
    clock = StepClock()
    started = time.perf_counter()
    output = loaded.model.generate(
        ids,
        attention_mask=mask,
        eos_token_id=stop,
        pad_token_id=stop[0],
        streamer=clock,
        do_sample=False,
        temperature=None,
        top_p=None,
        top_k=None,
        repetition_penalty=1.0,
        max_new_tokens=max_new,
    )
    elapsed = time.perf_counter() - started
    steps = clock.calls[1:]
    timings = []
    for row in output[:, width:].tolist():
        ended = next((i for i, token in enumerate(row) if token in stop), len(row))
        timing = ReplyTiming(sent=started, arrivals=steps[:ended], completion_tokens=ended)
        timing.ended = started + elapsed
        timings.append(timing)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Measured.of(timings, f"{peak:.0f}")


def _median(runs: list[Measured]) -> Measured:
    """Each figure's own median over the rounds: a round whose tokens/s is the median may
    still have had its first token delayed, and one stream gives one first token a round."""
    of = statistics.median
    pieces = [run.piece_p50 for run in runs if run.piece_p50 is not None]
    return Measured(
        tok_s=of([run.tok_s for run in runs]),
        ttft_p50=of([run.ttft_p50 for run in runs]),
        ttft_p95=of([run.ttft_p95 for run in runs]),
        gap_p95=of([run.gap_p95 for run in runs]),
        memory_mib=runs[-1].memory_mib,
        piece_p50=of(pieces) if pieces else None,
    )


def _rounds(streams: int, repeats: int) -> int:
    """Rounds at a number of streams: a round of one stream is one reply, short and at the
    mercy of the host's load, so it gets more."""
    return repeats * (ONE_STREAM_ROUNDS if streams == 1 else 1)


def _alternated(
    paths: dict[str, tuple[Measure, tuple[int, ...]]], repeats: int
) -> dict[str, dict[int, Measured]]:
    """Each path at each of its numbers of streams, the paths taking turns at every number
    and asking the same questions, so that a change in the machine's load hits them alike;
    each figure the median of its rounds (`_rounds`)."""
    levels = sorted({streams for _, counts in paths.values() for streams in counts})
    runs: dict[str, dict[int, list[Measured]]] = {
        path: {streams: [] for streams in counts} for path, (_, counts) in paths.items()
    }
    for repeat in range(max(_rounds(streams, repeats) for streams in levels)):
        for streams in levels:
            if repeat >= _rounds(streams, repeats):
                continue
            for path, (measure, counts) in paths.items():
                if streams in counts:
                    runs[path][streams].append(measure(streams, f"r{repeat}"))
    return {
        path: {streams: _median(measured) for streams, measured in by_streams.items()}
        for path, by_streams in runs.items()
    }


async def _direct_reply(
    client: httpx.AsyncClient, llama: LlamaServer, question: str, max_tokens: int
) -> DirectTiming:
    """One streamed chat completion straight from llama-server, timed like a socket's reply."""
    body = {
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    timing = DirectTiming(sent=time.perf_counter())
    characters = 0
    async with client.stream("POST", llama.url + "/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if chunk["choices"] and (text := chunk["choices"][0]["delta"].get("content")):
                timing.arrivals.append(time.perf_counter())
                characters += len(text)
                if characters >= PIECE_CHARS and timing.piece_at is None:
                    timing.piece_at = timing.arrivals[-1]
            if chunk.get("usage"):
                timing.completion_tokens = chunk["usage"]["completion_tokens"]
    timing.ended = time.perf_counter()
    if timing.piece_at is None:
        timing.piece_at = timing.ended
    return timing


def _direct(llama: LlamaServer, max_tokens: int) -> Round:
    async def run(asked: list[str]) -> list[ReplyTiming]:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(timeout=None, limits=limits) as client:
            return await asyncio.gather(
                *(_direct_reply(client, llama, question, max_tokens) for question in asked)
            )

    return run


def _sockets(server: Server) -> Round:
    async def run(asked: list[str]) -> list[ReplyTiming]:
        connections = [await server.connect(server.login()) for _ in asked]
        try:
            for ws in connections:
                await ws.recv()
            return await asyncio.gather(
                *(ask(ws, question) for ws, question in zip(connections, asked, strict=True))
            )
        finally:
            for ws in connections:
                await ws.close()

    return run


def _measure(run: Round, streams: int, tag: str, memory: Callable[[], str]) -> Measured:
    return Measured.of(asyncio.run(run(questions(streams, tag))), memory())


def _server_env(name: str, engine: str, **more: str) -> dict[str, str]:
    return {
        "WXGPT_ENGINE": engine,
        "WXGPT_MODEL": name,
        "WXGPT_OUTPUT_CHECK_CHARS": str(PIECE_CHARS),
        "WXGPT_MAX_CONCURRENT_GENERATIONS": str(max(SCALING)),
        "WXGPT_MAX_QUEUE": str(max(SCALING)),
        **more,
    }


def _chat(max_new: int) -> dict[str, object]:
    return {"temperature": 0, "repetition_penalty": 1.0, "max_new_tokens": max_new}


def _torch_engine(
    name: str,
    engine: str,
    levels: tuple[int, ...],
    max_new: int,
    repeats: int,
    ceiling: LoadedModel | None = None,
) -> dict[str, dict[int, Measured]]:
    """wxgpt on a torch engine at each number of sockets; with `ceiling`, that model's
    `generate` for one prompt and a batch of 16 (the ceilings) in the same rounds."""
    with Server(_server_env(name, engine), _chat(max_new)) as server:
        run = _sockets(server)
        memory = lambda: f"{server.rss_bytes() / 2**20:.0f}"  # noqa: E731
        _measure(run, 2, "warm", memory)
        paths: dict[str, tuple[Measure, tuple[int, ...]]] = {
            engine: (lambda streams, tag: _measure(run, streams, tag, memory), levels)
        }
        if ceiling is not None:
            _generate(ceiling, questions(1, "warm"), 4)
            paths["generate"] = (
                lambda streams, tag: _generate(ceiling, questions(streams, tag), max_new),
                (1, BATCH),
            )
        return _alternated(paths, repeats)


def _llama(binary: Path, name: str, max_new: int, repeats: int) -> dict[str, dict[int, Measured]]:
    """llama-server direct and wxgpt's remote engine in front of it, rounds alternated so
    that a change in the machine's load hits both alike. Both ask the same questions, so
    their replies are the same and stop at the same token; every round starts with no
    prompt cached, so neither finds the other's."""
    workdir = Path(tempfile.mkdtemp(prefix="wxgpt-llama-"))
    llama = LlamaServer(
        binary,
        default_gguf(name),
        workdir / "llama-server.log",
        parallel=BATCH,
        context=SLOT_CONTEXT * BATCH,
        threads=LLAMA_THREADS,
        extra=("--slot-save-path", str(workdir), "--cache-ram", "0"),
    ).start()
    env = _server_env(
        name, "remote", WXGPT_INFERENCE_URL=llama.url, WXGPT_MODEL=str(default_gguf(name))
    )
    try:
        with Server(env, _chat(max_new)) as server:
            paths = {"direct": _direct(llama, max_new), "remote": _sockets(server)}

            def llama_mib() -> str:
                return f"{status_kib(llama.pid, 'VmRSS') / 1024:.0f}"

            memory = {
                "direct": llama_mib,
                "remote": lambda: f"{llama_mib()} + {server.rss_bytes() / 2**20:.0f}",
            }

            def afresh(path: str) -> Measure:
                def measure(streams: int, tag: str) -> Measured:
                    llama.forget_prompts()
                    return _measure(paths[path], streams, tag, memory[path])

                return measure

            for path in paths:
                afresh(path)(BATCH, "warm")
            return _alternated({path: (afresh(path), (1, BATCH)) for path in paths}, repeats)
    finally:
        llama.stop()


def _row(label: str, streams: int, measured: Measured, ceiling: Measured | None) -> dict[str, str]:
    def ratio(mine: float, theirs: float | None) -> str:
        return f"{mine / theirs:.2f}" if theirs else ""

    return {
        "path": label,
        "streams": str(streams),
        "tok/s": f"{measured.tok_s:.1f}",
        "ttft p50 s": f"{measured.ttft_p50:.2f}",
        "ttft p95 s": f"{measured.ttft_p95:.2f}",
        "gap p95 s": f"{measured.gap_p95:.3f}",
        "memory MiB": measured.memory_mib,
        "tok/s / ceiling": ratio(measured.tok_s, ceiling.tok_s if ceiling else None),
        "ttft p50 / ceiling": ratio(measured.ttft_p50, ceiling.ttft_p50 if ceiling else None),
    }


def _goal(name: str, what: str, value: float, goal: str) -> dict[str, str]:
    """`goal` is ">= bound" or "<= bound"."""
    sign, bound = goal.split()
    holds = value >= float(bound) if sign == ">=" else value <= float(bound)
    return {
        "model": name,
        "ratio": what,
        "measured": f"{value:.2f}",
        "goal": goal,
        "met": "yes" if holds else "no",
    }


def model_table(name: str, quick: bool) -> tuple[list[dict[str, str]], Goals, dict[int, Measured]]:
    """One model's table, its ratios against the goals, and the batched engine at every
    socket count."""
    max_new = 24 if quick else 64
    repeats = 1 if quick else 3
    levels = SCALING[:-1] if quick else SCALING
    # One round: the single engine takes 16 replies one after another, and is no goal.
    single = _torch_engine(name, "single", (1, BATCH), max_new, 1)["single"]
    ceiling = load_model(ModelSpec(source=name))
    measured = _torch_engine(name, "batched", levels, max_new, repeats, ceiling)
    del ceiling  # its weights go before llama-server loads its own
    batched, generate = measured["batched"], measured["generate"]
    rows = [
        _row("generate, one prompt (ceiling)", 1, generate[1], None),
        _row(f"generate, static batch of {BATCH} (ceiling)", BATCH, generate[BATCH], None),
    ]
    binary = llama_server_binary()
    llama = _llama(binary, name, max_new, repeats) if binary else None
    if llama:
        direct = llama["direct"]
        rows += [_row("llama-server direct (ceiling)", n, direct[n], None) for n in (1, BATCH)]
    for label, measured in (("wxgpt single engine", single), ("wxgpt batched engine", batched)):
        rows += [_row(label, n, measured[n], generate[n]) for n in (1, BATCH)]
    goals = [
        _goal(
            name,
            "batched 1 socket / generate one prompt, tok/s",
            _tok_s_ratio(batched, generate, 1),
            ">= 0.95",
        ),
        _goal(
            name,
            f"batched {BATCH} sockets / generate batch of {BATCH}, tok/s",
            _tok_s_ratio(batched, generate, BATCH),
            ">= 0.85",
        ),
        _goal(
            name,
            f"batched p95 first token, {BATCH} sockets / 1 socket",
            batched[BATCH].ttft_p95 / batched[1].ttft_p50,
            "<= 3",
        ),
        {
            "model": name,
            "ratio": f"for reference: generate's first token, batch of {BATCH} / one prompt",
            "measured": f"{generate[BATCH].ttft_p95 / generate[1].ttft_p50:.2f}",
            "goal": "",
            "met": "",
        },
    ]
    if llama:
        remote = llama["remote"]
        rows += [
            _row("wxgpt remote engine over llama-server", n, remote[n], direct[n])
            for n in (1, BATCH)
        ]
        for n in (1, BATCH):
            goals.append(
                _goal(
                    name,
                    f"remote / llama-server direct at {n}, tok/s",
                    _tok_s_ratio(remote, direct, n),
                    ">= 0.90",
                )
            )
            goals.append(
                _goal(
                    name,
                    f"remote / llama-server direct at {n}, first token p50",
                    remote[n].ttft_p50 / direct[n].ttft_p50,
                    "<= 1.10",
                )
            )
            goals.append(
                _goal(
                    name,
                    f"remote / llama-server direct at {n}, first {PIECE_CHARS} characters p50",
                    remote[n].ttft_p50 / (direct[n].piece_p50 or float("nan")),
                    "<= 1.10",
                )
            )
        goals.append(
            _goal(
                name,
                f"remote over llama-server / batched, {BATCH} sockets, tok/s",
                _tok_s_ratio(remote, batched, BATCH),
                ">= 3",
            )
        )
    else:
        goals.append({"model": name, "ratio": BUILD_HINT, "measured": "", "goal": "", "met": ""})
    return rows, goals, batched


def _tok_s_ratio(mine: dict[int, Measured], theirs: dict[int, Measured], streams: int) -> float:
    """Tokens/s of one path over another's at the same number of streams."""
    return mine[streams].tok_s / theirs[streams].tok_s


def _filler(name: str, tokens: int) -> str:
    """English text of about `tokens` tokens for this model."""
    tokenizer = load_tokenizer(ModelSpec(source=name)).tokenizer
    per_sentence = len(tokenizer.encode(FILLER, add_special_tokens=False))
    return FILLER * max(1, tokens // per_sentence)


async def _history_round(server: Server, name: str, target: int) -> ReplyTiming:
    """Grow one conversation with messages of history until its prompt reaches `target`
    tokens; the timing of the reply that reached it."""
    async with server.connect(server.login()) as ws:
        await ws.recv()
        conversation: int | None = None
        prompt = 0
        while True:
            message = _filler(name, min(HISTORY_MESSAGE_TOKENS, max(target - prompt - 40, 20)))
            timing = await ask(ws, message, conversation_id=conversation)
            conversation, prompt = timing.conversation_id, timing.prompt_tokens
            if prompt >= target * 0.9:
                return timing


def history_table(name: str) -> list[dict[str, str]]:
    """First token of the batched engine against the prompt a conversation has grown to."""
    env = _server_env(name, "batched")
    rows = []
    with Server(env, _chat(8)) as server:
        asyncio.run(_history_round(server, name, HISTORY_TOKENS[0]))  # warm-up
        for target in HISTORY_TOKENS:
            timing = asyncio.run(_history_round(server, name, target))
            rows.append(
                {
                    "model": name,
                    "history": f"{target} tokens",
                    "prompt tokens": str(timing.prompt_tokens),
                    "first token s": f"{timing.first_token_s:.2f}",
                }
            )
    return rows


def scaling_rows(name: str, batched: dict[int, Measured]) -> list[dict[str, str]]:
    one = batched[1]
    return [
        {
            "model": name,
            "sockets": str(n),
            "tok/s": f"{measured.tok_s:.1f}",
            "ttft p50 s": f"{measured.ttft_p50:.2f}",
            "ttft p95 s": f"{measured.ttft_p95:.2f}",
            "gap p95 s": f"{measured.gap_p95:.3f}",
            "tok/s / 1 socket": f"{measured.tok_s / one.tok_s:.2f}",
            "ttft p95 / 1 socket": f"{measured.ttft_p95 / one.ttft_p95:.2f}",
        }
        for n, measured in batched.items()
    ]


def models() -> list[str]:
    chosen = os.environ.get("WXGPT_BENCH_MODELS")
    return chosen.split(",") if chosen else ["smollm2", DEFAULT_MODEL]


def run(quick: bool) -> list[tuple[str, list[dict[str, str]]]]:
    """A table per model; then the batched engine's scaling and its first token against
    history, for every model. --quick: shorter replies, one round, up to 16 sockets."""
    tables = []
    goals: Goals = []
    scaling: list[dict[str, str]] = []
    history: list[dict[str, str]] = []
    for name in models():
        rows, model_goals, batched = model_table(name, quick)
        tables.append((f"Model {name}", rows))
        goals += model_goals
        scaling += scaling_rows(name, batched)
        history += history_table(name)
    tables.append(("Ratios against the goals (each measured in this run)", goals))
    tables.append(("How cost grows with sockets (batched engine)", scaling))
    tables.append(("First token against the conversation's length (batched engine)", history))
    return tables

"""Overhead: one reply through /ws/chat versus `model.generate` called in-process."""

import asyncio
import statistics
import time

import torch
from transformers.generation.streamers import BaseStreamer

from bench.harness import Server, ask
from generation.loading import ModelSpec, load_model
from generation.prompts import Turn
from generation.sampling import SamplingParams

QUESTIONS = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Write one sentence about the sea.",
]


class _Clock(BaseStreamer):
    """Notes when `generate` hands out each new token (the prompt comes first)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def put(self, value: torch.Tensor) -> None:
        self.calls.append(time.perf_counter())

    def end(self) -> None:
        return None


def in_process(params: SamplingParams) -> list[tuple[float, float, int]]:
    """(first token s, tokens/s, prompt tokens) per question, calling generate directly."""
    loaded = load_model(ModelSpec())
    stop_ids = loaded.prompt_format.stop_token_ids
    rows = []
    for question in [QUESTIONS[0], *QUESTIONS]:  # the first one warms the model up
        ids = loaded.prompt_format.encode([Turn("user", question)])
        clock = _Clock()
        started = time.perf_counter()
        output = loaded.model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
            eos_token_id=stop_ids,
            pad_token_id=stop_ids[0],
            streamer=clock,
            **params.generate_kwargs(),
        )
        ended = time.perf_counter()
        tokens = output.shape[1] - len(ids)
        first = clock.calls[1]
        rows.append((first - started, (tokens - 1) / (ended - first), len(ids)))
    return rows[1:]


async def _through_server(server: Server) -> list[tuple[float, float, int]]:
    rows = []
    async with server.connect(server.login()) as ws:
        await ws.recv()
        for question in [QUESTIONS[0], *QUESTIONS]:
            timing = await ask(ws, question)
            rows.append((timing.first_token_s, timing.tokens_per_s, timing.prompt_tokens))
    return rows[1:]


def run(quick: bool) -> list[dict[str, str]]:
    """Median first token and tokens/s both ways, and the server's ratio to in-process."""
    max_new = 16 if quick else 48
    params = SamplingParams(temperature=0, repetition_penalty=1.1, max_new_tokens=max_new)
    direct = in_process(params)
    chat = {"temperature": 0, "repetition_penalty": 1.1, "max_new_tokens": max_new}
    with Server({"WXGPT_ENGINE": "single"}, chat) as server:
        served = asyncio.run(_through_server(server))
    assert [row[2] for row in served] == [row[2] for row in direct], "same prompts both ways"
    rows = []
    for index, name in ((0, "first token s"), (1, "tokens/s")):
        mine = statistics.median(row[index] for row in served)
        theirs = statistics.median(row[index] for row in direct)
        rows.append(
            {
                "measure": name,
                "in-process generate": f"{theirs:.3f}",
                "through /ws/chat": f"{mine:.3f}",
                "server / in-process": f"{mine / theirs:.3f}",
            }
        )
    return rows

"""Overhead: one reply through /ws/chat versus `model.generate` called in-process."""

import asyncio
import statistics
import time

import torch

from bench.harness import Server, StepClock, ask
from generation.loading import load_model
from generation.model_spec import ModelSpec
from generation.prompts import Turn
from generation.sampling import SamplingParams

QUESTIONS = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Write one sentence about the sea.",
]


# Per question: first token s, whole reply s, tokens/s over the whole reply, prompt tokens.
# The whole reply is what compares fairly: the server releases text in checked pieces (README:
# Content safety), so its first text waits for a piece while its decoding goes on.
Timings = tuple[float, float, float, int]


def in_process(params: SamplingParams) -> list[Timings]:
    """The timings of each question, calling generate directly."""
    loaded = load_model(ModelSpec())
    stop_ids = loaded.prompt_format.stop_token_ids
    rows = []
    for question in [QUESTIONS[0], *QUESTIONS]:  # the first one warms the model up
        ids = loaded.prompt_format.encode([Turn("user", question)])
        clock = StepClock()
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
        whole = ended - started
        rows.append((first - started, whole, tokens / whole, len(ids)))
    return rows[1:]


async def _through_server(server: Server) -> list[Timings]:
    rows = []
    async with server.connect(server.login()) as ws:
        await ws.recv()
        for question in [QUESTIONS[0], *QUESTIONS]:
            timing = await ask(ws, question)
            whole = timing.ended - timing.sent
            speed = timing.completion_tokens / whole
            rows.append((timing.first_token_s, whole, speed, timing.prompt_tokens))
    return rows[1:]


def run(quick: bool) -> list[dict[str, str]]:
    """Median first token and tokens/s both ways, and the server's ratio to in-process."""
    max_new = 16 if quick else 48
    params = SamplingParams(temperature=0, repetition_penalty=1.1, max_new_tokens=max_new)
    direct = in_process(params)
    chat = {"temperature": 0, "repetition_penalty": 1.1, "max_new_tokens": max_new}
    with Server({"WXGPT_ENGINE": "single"}, chat) as server:
        served = asyncio.run(_through_server(server))
    assert [row[3] for row in served] == [row[3] for row in direct], "same prompts both ways"
    rows = []
    measures = ((0, "first text s"), (1, "whole reply s"), (2, "tokens/s, whole reply"))
    for index, name in measures:
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

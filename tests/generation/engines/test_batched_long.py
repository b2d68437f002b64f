"""A long prompt in a real batched engine: prefilled in chunks between the other replies'
steps, never padding their rows to its length, its memory gone when it ends."""

import asyncio
import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from generation.engines.base import PreparedReply
from generation.engines.batched import FIRST_TIMED_CHUNK_TOKENS, MIN_CHUNK_TOKENS, BatchingEngine
from generation.loading import LoadedModel, load_model
from generation.model_spec import ModelSpec
from generation.sampling import SamplingParams
from generation.stopping import CancelToken
from generation.streaming import GenerationResult
from tests.generation.engines.test_batched import prompt, quiet, solo
from tests.model_passes import ForwardPasses, Pass

CHUNK = 256
LONG_PROMPT = 4000
SHORT = SamplingParams(temperature=0, repetition_penalty=1.3, max_new_tokens=120)
# Room to decode through a whole long prefill, however many steps each chunk is owed.
OPEN_ENDED = SamplingParams(temperature=0, repetition_penalty=1.3, max_new_tokens=6000)
LONG = SamplingParams(temperature=0, repetition_penalty=1.3, max_new_tokens=20)


@pytest.fixture(scope="module")
def loaded_long(chat_model: Path) -> LoadedModel:
    return load_model(ModelSpec(source=str(chat_model)))


@pytest.fixture
def engine(loaded_long: LoadedModel) -> Iterator[BatchingEngine]:
    engine = BatchingEngine(loaded_long, slots=4, max_waiting=0, prefill_chunk_tokens=CHUNK)
    yield engine
    engine.close()


@pytest.fixture
def passes(loaded_long: LoadedModel) -> Iterator[ForwardPasses]:
    with ForwardPasses(loaded_long.model).installed() as passes:
        yield passes


def long_prompt(loaded: LoadedModel) -> list[int]:
    # Rare CJK characters: four tokens each, as they were for the user who stalled everyone.
    ids = prompt(loaded, "\U00020000" * (LONG_PROMPT // 4))
    assert len(ids) > LONG_PROMPT
    return ids


def run(
    engine: BatchingEngine,
    ids: list[int],
    params: SamplingParams,
    cancel: CancelToken | None = None,
) -> "asyncio.Task[GenerationResult]":
    request = PreparedReply((), ids, params)
    return asyncio.create_task(engine.generate(request, cancel or CancelToken(), quiet))


async def test_a_long_prompt_is_prefilled_in_chunks_between_the_other_replys_steps(
    loaded_long: LoadedModel, engine: BatchingEngine, passes: ForwardPasses
) -> None:
    short_ids, long_ids = prompt(loaded_long, "hello there"), long_prompt(loaded_long)
    start = len(passes.seen)
    passes.hold()
    # The short reply is owed as long as each chunk took, so how many steps it takes between
    # two chunks depends on the machine: it decodes until the test ends it after the long one.
    stop_short = CancelToken()
    short = run(engine, short_ids, OPEN_ENDED, stop_short)
    await passes.held()
    long = run(engine, long_ids, LONG)
    await asyncio.sleep(0)
    passes.open()
    long_result = await asyncio.wait_for(long, 120)
    stop_short.cancel()
    short_result = await asyncio.wait_for(short, 120)
    assert short_result.finish_reason == "cancelled", "the short reply ended before the long"

    seen = passes.seen[start:]
    assert seen[0].tokens == len(short_ids)  # the short prompt, then a step alone
    chunks = [p for p in seen[1:] if not p.is_step]
    assert sum(p.tokens for p in chunks) == len(long_ids)
    assert len(chunks) == -(-len(long_ids) // CHUNK)
    assert all(p.tokens <= CHUNK for p in chunks)
    # Between two chunks the short reply took its steps, at least one, at its own width.
    short_width = len(short_ids) + OPEN_ENDED.max_new_tokens
    for chunk, after in itertools.pairwise(chunks):
        between = seen[chunk.index - start + 1 : after.index - start]
        assert between and all(p.is_step and p.width <= short_width for p in between)
    # Once both decode, they step apart: the short row is never padded to the long context.
    short_steps = [p for p in seen if p.is_step and p.width < LONG_PROMPT]
    long_steps = [p for p in seen if p.is_step and p.width > LONG_PROMPT]
    assert len(short_steps) == short_result.completion_tokens - 1
    assert len(long_steps) == LONG.max_new_tokens - 1
    assert all(p.rows == 1 for p in short_steps + long_steps)
    # Alone, for as many tokens as it took beside the long one, the short reply says the same.
    as_many = dataclasses.replace(OPEN_ENDED, max_new_tokens=short_result.completion_tokens)
    alone = await solo(loaded_long, "hello there", as_many)
    assert (alone.finish_reason, alone.completion_tokens) == ("length", as_many.max_new_tokens)
    assert alone.text.startswith(short_result.text)
    assert (long_result.finish_reason, long_result.completion_tokens) == ("length", 20)


async def test_after_each_chunk_the_decoding_replies_get_as_long_as_it_took(
    loaded_long: LoadedModel, engine: BatchingEngine, passes: ForwardPasses
) -> None:
    slow = 0.25
    long_ids = long_prompt(loaded_long)
    # The third chunk is made slow: the short reply, still decoding, must then step for at
    # least as long before the fourth, however fast the machine's own passes are.
    third_chunk = [0]

    def is_third_chunk(seen: Pass) -> bool:
        third_chunk[0] += not seen.is_step and seen.tokens == CHUNK
        return third_chunk[0] == 3

    passes.slow(is_third_chunk, slow)
    start = len(passes.seen)
    short = run(engine, prompt(loaded_long, "hello there"), OPEN_ENDED)
    await passes.until(start + 2)  # its prompt and a first step
    long = run(engine, long_ids, LONG)
    await asyncio.wait_for(long, 120)
    short.cancel()
    chunks = [p for p in passes.seen[start:] if not p.is_step and p.tokens == CHUNK]
    slowed, following = chunks[2], chunks[3]
    between = passes.seen[slowed.index + 1 : following.index]
    assert all(p.is_step and p.width < LONG_PROMPT for p in between)
    assert following.began - slowed.began >= 2 * slow, "the chunk took the decoders' time"


async def test_after_a_long_reply_the_next_replies_step_at_their_own_width(
    loaded_long: LoadedModel, engine: BatchingEngine, passes: ForwardPasses
) -> None:
    await asyncio.wait_for(run(engine, long_prompt(loaded_long), LONG), 120)
    start = len(passes.seen)
    results = await asyncio.wait_for(
        asyncio.gather(*(run(engine, prompt(loaded_long, t), SHORT) for t in ("hi", "a story"))),
        120,
    )
    assert [r.completion_tokens for r in results] == [SHORT.max_new_tokens] * 2
    steps = [p for p in passes.seen[start:] if p.is_step]
    assert max(p.width for p in steps) < 200, "the long reply's cache outlived it"


async def test_timed_chunks_start_small_and_stay_within_the_cap(
    loaded_long: LoadedModel, passes: ForwardPasses
) -> None:
    engine = BatchingEngine(
        loaded_long, slots=2, max_waiting=0, prefill_chunk_tokens=CHUNK, prefill_chunk_seconds=0.05
    )
    ids = long_prompt(loaded_long)
    start = len(passes.seen)
    result = await asyncio.wait_for(run(engine, ids, LONG), 120)
    engine.close()
    chunks = [p.tokens for p in passes.seen[start:] if not p.is_step]
    assert chunks[0] == FIRST_TIMED_CHUNK_TOKENS
    assert sum(chunks) == len(ids)
    assert all(MIN_CHUNK_TOKENS <= tokens <= CHUNK for tokens in chunks[:-1])
    assert result.completion_tokens == LONG.max_new_tokens

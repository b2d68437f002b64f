"""Failures injected into a real batched engine: each ends only the replies it touches, or
fails the engine visibly; none leaves a reply hanging."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from generation.engines import batch_cache
from generation.engines.base import PreparedReply
from generation.engines.batch_cache import BatchCache, UnsupportedCache
from generation.engines.batched import MAX_FAILURES_IN_A_ROW, BatchingEngine
from generation.errors import EngineFailed
from generation.loading import LoadedModel, load_model
from generation.model_spec import ModelSpec
from generation.sampling import SamplingParams
from generation.stopping import CancelToken
from generation.streaming import GenerationResult
from tests.generation.engines.test_batched import PROMPTS, prompt, quiet, solo
from tests.model_passes import ForwardPasses, Pass, eventually
from tests.tiny_model import build_tiny_sliding_window

LONG = SamplingParams(temperature=0, repetition_penalty=1.3, max_new_tokens=200)
SAMPLED = SamplingParams(temperature=0.8, max_new_tokens=200)


@pytest.fixture
def engine(loaded_tiny: LoadedModel) -> Iterator[BatchingEngine]:
    engine = BatchingEngine(loaded_tiny, slots=8, max_waiting=0)
    yield engine
    engine.close()


@pytest.fixture
def passes(loaded_tiny: LoadedModel) -> Iterator[ForwardPasses]:
    with ForwardPasses(loaded_tiny.model).installed() as passes:
        yield passes


def two_rows(seen: Pass) -> bool:
    return seen.is_step and seen.rows == 2


def ask(
    engine: BatchingEngine, loaded: LoadedModel, text: str, params: SamplingParams = LONG
) -> "asyncio.Task[GenerationResult]":
    request = PreparedReply((), prompt(loaded, text), params)
    return asyncio.create_task(engine.generate(request, CancelToken(), quiet))


async def second_joins(
    engine: BatchingEngine, loaded: LoadedModel, passes: ForwardPasses, params: SamplingParams
) -> tuple["asyncio.Task[GenerationResult]", "asyncio.Task[GenerationResult]"]:
    """A first reply held at its first pass, then a second that joins it at the next step."""
    passes.hold()
    first = ask(engine, loaded, PROMPTS[1])
    await passes.held()
    second = ask(engine, loaded, PROMPTS[2], params)
    await asyncio.sleep(0)
    # The first's prefill and one step alone, the second's prefill, then they step together.
    passes.open()
    return first, second


async def test_nan_logits_in_one_row_end_only_that_reply(
    loaded_tiny: LoadedModel, engine: BatchingEngine, passes: ForwardPasses
) -> None:
    expected = await solo(loaded_tiny, PROMPTS[1], LONG)
    passes.nan_logits(two_rows, row=1)
    first, second = await second_joins(engine, loaded_tiny, passes, SAMPLED)
    broken, fine = await asyncio.wait_for(asyncio.gather(second, first), 60)
    assert (broken.finish_reason, broken.error) == ("error", "the model gave NaN logits")
    assert (fine.finish_reason, fine.text) == ("length", expected.text)
    assert engine.health().ready


async def test_out_of_memory_in_a_step_ends_that_step_and_the_engine_goes_on(
    loaded_tiny: LoadedModel, engine: BatchingEngine, passes: ForwardPasses
) -> None:
    passes.fail(two_rows, torch.OutOfMemoryError("out of memory (injected)"))
    first, second = await second_joins(engine, loaded_tiny, passes, LONG)
    results = await asyncio.wait_for(asyncio.gather(first, second), 60)
    assert [(r.finish_reason, r.error) for r in results] == [
        ("error", "out of memory (injected)")
    ] * 2
    assert engine.health().ready
    expected = await solo(loaded_tiny, PROMPTS[3], LONG)
    after = await asyncio.wait_for(ask(engine, loaded_tiny, PROMPTS[3]), 60)
    assert (after.finish_reason, after.text) == ("length", expected.text)


async def test_a_join_failing_halfway_leaves_the_running_batch_intact(
    loaded_tiny: LoadedModel,
    engine: BatchingEngine,
    passes: ForwardPasses,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = await solo(loaded_tiny, PROMPTS[1], LONG)
    pad_left = batch_cache._pad_left
    calls = 0

    def fails_at_the_second_layer(tensor, width):  # type: ignore[no-untyped-def]
        # The first join into an empty batch pads nothing: these are the second reply's,
        # four per layer (own and new keys, own and new values).
        nonlocal calls
        calls += 1
        if calls == 5:
            raise RuntimeError("join failed (injected)")
        return pad_left(tensor, width)

    monkeypatch.setattr(batch_cache, "_pad_left", fails_at_the_second_layer)
    first, second = await second_joins(engine, loaded_tiny, passes, LONG)
    failed, fine = await asyncio.wait_for(asyncio.gather(second, first), 60)
    assert calls >= 5
    assert (failed.finish_reason, failed.error) == ("error", "join failed (injected)")
    assert (fine.finish_reason, fine.text) == ("length", expected.text)


async def test_failures_in_a_row_fail_the_engine_and_it_says_why(
    loaded_tiny: LoadedModel, engine: BatchingEngine, passes: ForwardPasses
) -> None:
    passes.fail(lambda seen: True, RuntimeError("device lost (injected)"), every=True)
    for _ in range(MAX_FAILURES_IN_A_ROW):
        result = await asyncio.wait_for(ask(engine, loaded_tiny, PROMPTS[0]), 60)
        assert (result.finish_reason, result.error) == ("error", "device lost (injected)")
    await asyncio.wait_for(eventually(lambda: not engine.health().ready), 60)
    reason = engine.health().reason
    assert reason is not None
    assert "failed in a row" in reason and "device lost (injected)" in reason
    with pytest.raises(EngineFailed, match="device lost"):
        await ask(engine, loaded_tiny, PROMPTS[0])


async def test_an_error_in_the_thread_ends_every_reply_and_fails_the_engine(
    loaded_tiny: LoadedModel,
    engine: BatchingEngine,
    passes: ForwardPasses,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_keep(self: BatchCache, rows: list[int]) -> None:
        raise IndexError("bookkeeping bug (injected)")

    monkeypatch.setattr(BatchCache, "keep", broken_keep)
    short = SamplingParams(temperature=0, max_new_tokens=3)
    first, second = await second_joins(engine, loaded_tiny, passes, short)
    ended, left = await asyncio.wait_for(asyncio.gather(second, first), 60)
    # The short reply ended, and its leaving the batch broke the thread.
    assert ended.finish_reason == "length"
    assert left.finish_reason == "error"
    assert left.error is not None and "bookkeeping bug (injected)" in left.error
    reason = engine.health().reason
    assert reason is not None and "IndexError: bookkeeping bug (injected)" in reason
    with pytest.raises(EngineFailed):
        await ask(engine, loaded_tiny, PROMPTS[0])


def test_a_sliding_window_model_is_refused_at_start(tmp_path: Path) -> None:
    loaded = load_model(ModelSpec(source=str(build_tiny_sliding_window(tmp_path))))
    with pytest.raises(UnsupportedCache, match=r"DynamicSlidingWindowLayer.*WXGPT_ENGINE=single"):
        BatchingEngine(loaded, slots=2, max_waiting=0)


async def test_a_failed_prefill_together_ends_only_the_replies_in_it(
    loaded_tiny: LoadedModel, engine: BatchingEngine, passes: ForwardPasses
) -> None:
    expected = await solo(loaded_tiny, PROMPTS[1], LONG)
    together = RuntimeError("prefill (injected)")
    passes.fail(lambda seen: seen.rows == 2 and not seen.is_step, together)
    passes.hold()
    running = ask(engine, loaded_tiny, PROMPTS[1])
    await passes.held()  # its prompt waits; the two below arrive meanwhile, together
    newcomers = [ask(engine, loaded_tiny, PROMPTS[0]), ask(engine, loaded_tiny, PROMPTS[2])]
    await asyncio.sleep(0)
    passes.open()
    failed = await asyncio.wait_for(asyncio.gather(*newcomers), 60)
    assert [(r.finish_reason, r.error) for r in failed] == [("error", "prefill (injected)")] * 2
    fine = await asyncio.wait_for(running, 60)
    assert (fine.finish_reason, fine.text) == ("length", expected.text)
    assert engine.health().ready

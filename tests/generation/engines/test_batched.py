import asyncio
from pathlib import Path

import pytest

from generation.engines.base import PreparedReply
from generation.engines.batched import MIN_CHUNK_TOKENS, BatchingEngine
from generation.engines.single import SingleEngine
from generation.loading import LoadedModel
from generation.prompts import Turn
from generation.sampling import SamplingParams
from generation.stopping import CancelToken
from generation.streaming import GenerationResult
from tests.model_passes import ForwardPasses
from tests.pace import forward_gate

# A repetition penalty makes the tiny model's greedy text vary, and exercises the processors.
GREEDY = SamplingParams(temperature=0, repetition_penalty=1.3, max_new_tokens=30)
PROMPTS = [
    "hi",
    "the cat sat on the mat and looked at the dog",
    "tell me a story",
    "what is the weather like today in the city by the sea, and will it rain tomorrow?",
]


def prompt(loaded: LoadedModel, text: str) -> list[int]:
    return loaded.prompt_format.encode([Turn("user", text)])


async def quiet(text: str) -> None:
    return None


async def solo(loaded: LoadedModel, text: str, params: SamplingParams) -> GenerationResult:
    """The single engine's reply, alone."""
    engine = SingleEngine(loaded, slots=1, max_waiting=0)
    result = await engine.generate(
        PreparedReply((), prompt(loaded, text), params), CancelToken(), quiet
    )
    engine.close()
    return result


@pytest.fixture
def batched(loaded_tiny: LoadedModel):
    engine = BatchingEngine(loaded_tiny, slots=8, max_waiting=0)
    yield engine
    engine.close()


async def test_concurrent_greedy_replies_equal_the_single_engine(
    loaded_tiny: LoadedModel, batched: BatchingEngine
) -> None:
    # Different lengths, so replies join with different padding and leave at different steps.
    params = [
        SamplingParams(temperature=0, repetition_penalty=1.3, max_new_tokens=n)
        for n in (30, 17, 24, 9)
    ]
    expected = [await solo(loaded_tiny, text, p) for text, p in zip(PROMPTS, params, strict=True)]
    streamed: list[list[str]] = [[] for _ in PROMPTS]

    def collector(index: int):
        async def on_text(text: str) -> None:
            streamed[index].append(text)

        return on_text

    results = await asyncio.gather(
        *(
            batched.generate(
                PreparedReply((), prompt(loaded_tiny, text), p), CancelToken(), collector(i)
            )
            for i, (text, p) in enumerate(zip(PROMPTS, params, strict=True))
        )
    )
    assert len({r.text for r in expected}) == len(PROMPTS), "the prompts give distinct replies"
    for got, want, pieces in zip(results, expected, streamed, strict=True):
        assert got.text == want.text == "".join(pieces)
        assert (got.finish_reason, got.completion_tokens) == (
            want.finish_reason,
            want.completion_tokens,
        )
        assert got.prompt_tokens == want.prompt_tokens
        assert got.first_token_s is not None and got.first_token_s <= got.duration_s


async def test_stop_in_a_batch_stops_only_that_reply(
    loaded_tiny: LoadedModel, batched: BatchingEngine, tmp_path: Path
) -> None:
    long = SamplingParams(temperature=0, repetition_penalty=1.3, max_new_tokens=60)
    expected = await solo(loaded_tiny, PROMPTS[2], long)
    stopped = CancelToken()
    pieces = 0
    with forward_gate(tmp_path / "gate") as gate:

        async def stop_after_three(text: str) -> None:
            nonlocal pieces
            pieces += 1
            if pieces == 3:
                stopped.cancel()
                gate.open()

        # Two prefills and eight steps at most before the stop: then the model waits for it.
        gate.allow_more(10)
        cut, whole = await asyncio.gather(
            batched.generate(
                PreparedReply((), prompt(loaded_tiny, PROMPTS[0]), long), stopped, stop_after_three
            ),
            batched.generate(
                PreparedReply((), prompt(loaded_tiny, PROMPTS[2]), long), CancelToken(), quiet
            ),
        )
    assert cut.finish_reason == "cancelled"
    assert stopped.steps_after_cancel is not None and stopped.steps_after_cancel <= 1
    assert cut.completion_tokens == stopped.steps <= 11
    assert (whole.finish_reason, whole.completion_tokens, whole.text) == (
        "length",
        60,
        expected.text,
    )


async def test_disconnect_cancels_only_that_reply(
    loaded_tiny: LoadedModel, batched: BatchingEngine
) -> None:
    long = SamplingParams(temperature=0, repetition_penalty=1.3, max_new_tokens=60)
    expected = await solo(loaded_tiny, PROMPTS[1], long)
    dropped = CancelToken()
    first_piece = asyncio.Event()

    async def note(text: str) -> None:
        first_piece.set()

    with ForwardPasses(loaded_tiny.model).installed() as passes:
        # A pass at a time until the first piece is out, so both replies are mid-way however
        # fast the engine's thread runs against the event loop.
        passes.hold()
        gone = asyncio.create_task(
            batched.generate(
                PreparedReply((), prompt(loaded_tiny, PROMPTS[3]), long), dropped, note
            )
        )
        staying = asyncio.create_task(
            batched.generate(
                PreparedReply((), prompt(loaded_tiny, PROMPTS[1]), long), CancelToken(), quiet
            )
        )
        await passes.step_until(lambda _: first_piece.is_set())
        gone.cancel()  # what the chat socket does when the client goes away
        passes.open()
        with pytest.raises(asyncio.CancelledError):
            await gone
    assert dropped.steps_after_cancel is not None and dropped.steps_after_cancel <= 1
    assert dropped.steps < 60
    result = await staying
    assert (result.finish_reason, result.text) == ("length", expected.text)


async def test_a_new_reply_joins_a_running_batch(
    loaded_tiny: LoadedModel, batched: BatchingEngine
) -> None:
    short = SamplingParams(temperature=0, repetition_penalty=1.3, max_new_tokens=8)
    expected = await solo(loaded_tiny, PROMPTS[3], short)
    long_started = asyncio.Event()

    async def started(text: str) -> None:
        long_started.set()

    long = asyncio.create_task(
        batched.generate(
            PreparedReply(
                (),
                prompt(loaded_tiny, PROMPTS[0]),
                SamplingParams(temperature=0, max_new_tokens=600),
            ),
            CancelToken(),
            started,
        )
    )
    with ForwardPasses(loaded_tiny.model).installed() as passes:
        # The long reply goes a pass at a time until it has begun, then waits for the newcomer.
        passes.hold()
        await passes.step_until(lambda _: long_started.is_set())
        joining = asyncio.create_task(
            batched.generate(
                PreparedReply((), prompt(loaded_tiny, PROMPTS[3]), short), CancelToken(), quiet
            )
        )
        await asyncio.sleep(0)
        passes.open()
        joined = await joining
    assert not long.done(), "the newcomer finished while the long reply was still decoding"
    assert joined.text == expected.text
    assert (await long).completion_tokens == 600


async def test_a_failing_prompt_fails_alone(
    loaded_tiny: LoadedModel, batched: BatchingEngine
) -> None:
    too_long = [1] * 1100  # beyond the model's 1024 positions
    failed, fine = await asyncio.wait_for(
        asyncio.gather(
            batched.generate(PreparedReply((), too_long, GREEDY), CancelToken(), quiet),
            batched.generate(
                PreparedReply((), prompt(loaded_tiny, PROMPTS[0]), GREEDY), CancelToken(), quiet
            ),
        ),
        timeout=60,
    )
    assert failed.finish_reason == "error"
    assert failed.error
    assert (fine.finish_reason, fine.completion_tokens) == ("length", 30)


async def test_replies_arriving_together_are_prefilled_in_one_pass(
    loaded_tiny: LoadedModel, batched: BatchingEngine
) -> None:
    params = [
        SamplingParams(temperature=0, repetition_penalty=1.3, max_new_tokens=n) for n in (40, 12)
    ]
    texts = PROMPTS[1:3]
    expected = [await solo(loaded_tiny, text, p) for text, p in zip(texts, params, strict=True)]
    with ForwardPasses(loaded_tiny.model).installed() as passes:
        passes.hold()
        running = asyncio.create_task(
            batched.generate(
                PreparedReply((), prompt(loaded_tiny, PROMPTS[0]), GREEDY), CancelToken(), quiet
            )
        )
        await passes.held()  # the running reply's prompt; the newcomers arrive meanwhile
        start = len(passes.seen)
        arriving = [
            asyncio.create_task(
                batched.generate(
                    PreparedReply((), prompt(loaded_tiny, text), p), CancelToken(), quiet
                )
            )
            for text, p in zip(texts, params, strict=True)
        ]
        await asyncio.sleep(0)
        passes.open()
        results = await asyncio.wait_for(asyncio.gather(*arriving), 60)
        await running
    prefills = [p for p in passes.seen[start:] if not p.is_step]
    assert [p.rows for p in prefills] == [1, 2]  # the running one's, then both together
    for got, want in zip(results, expected, strict=True):
        assert (got.text, got.completion_tokens) == (want.text, want.completion_tokens)


async def test_prompts_that_fit_a_turn_go_in_whole_in_the_next_one_instead_of_being_cut(
    loaded_tiny: LoadedModel,
) -> None:
    base = prompt(loaded_tiny, PROMPTS[1])
    ids = [base[shift:] + base[:shift] for shift in range(3)]  # three prompts of one length
    # A turn's budget holds any one of them, never two.
    budget = len(base) + 1
    engine = BatchingEngine(loaded_tiny, slots=4, max_waiting=0, prefill_chunk_tokens=budget)
    with ForwardPasses(loaded_tiny.model).installed() as passes:
        passes.hold()
        replies = [
            asyncio.create_task(
                engine.generate(PreparedReply((), own, GREEDY), CancelToken(), quiet)
            )
            for own in ids
        ]
        await passes.held()  # the first prompts are in; the rest arrived meanwhile
        passes.open()
        await asyncio.wait_for(asyncio.gather(*replies), 60)
    engine.close()
    prefills = [p for p in passes.seen if not p.is_step]
    # Every prompt went into the cache whole: no pass holds part of one.
    lengths = {len(own) for own in ids}
    assert all(p.tokens in lengths for p in prefills)
    assert sum(p.rows for p in prefills) == len(ids)


async def test_a_crowd_waiting_for_first_tokens_goes_in_whole_in_one_pass_up_to_the_cap(
    loaded_tiny: LoadedModel,
) -> None:
    base = prompt(loaded_tiny, PROMPTS[3])
    crowd = [base[shift:] + base[:shift] for shift in range(4)]
    # The time allowed fits the smallest chunk only, the cap the whole crowd.
    assert len(base) > MIN_CHUNK_TOKENS
    engine = BatchingEngine(
        loaded_tiny,
        slots=8,
        max_waiting=0,
        prefill_chunk_tokens=len(crowd) * len(base),
        prefill_chunk_seconds=1e-9,
    )
    expected = [await solo(loaded_tiny, text, GREEDY) for text in ("hi", PROMPTS[3])]
    with ForwardPasses(loaded_tiny.model).installed() as passes:
        passes.hold()
        first = asyncio.create_task(
            engine.generate(
                PreparedReply((), prompt(loaded_tiny, "hi"), GREEDY), CancelToken(), quiet
            )
        )
        await passes.held()  # one reply's prompt; the crowd arrives meanwhile
        start = len(passes.seen)
        arriving = [
            asyncio.create_task(
                engine.generate(PreparedReply((), own, GREEDY), CancelToken(), quiet)
            )
            for own in crowd
        ]
        await asyncio.sleep(0)
        await passes.step_until(lambda p: p.is_step and p.rows == 1 + len(crowd), since=start)
        # One arrives while five decode: its prompt is cut to what the time allows.
        late = asyncio.create_task(
            engine.generate(PreparedReply((), base, GREEDY), CancelToken(), quiet)
        )
        await asyncio.sleep(0)
        passes.open()
        results = await asyncio.wait_for(asyncio.gather(first, *arriving, late), 60)
    engine.close()
    prefills = [p for p in passes.seen[start:] if not p.is_step]
    assert (prefills[1].rows, prefills[1].tokens) == (len(crowd), len(base))
    late_chunks = prefills[2:]
    assert late_chunks and all(p.tokens <= MIN_CHUNK_TOKENS for p in late_chunks)
    assert (results[0].text, results[1].text) == (expected[0].text, expected[1].text)


async def test_a_closed_engines_thread_ends_once_its_replies_are_over(
    loaded_tiny: LoadedModel,
) -> None:
    engine = BatchingEngine(loaded_tiny, slots=2, max_waiting=0)
    cancel = CancelToken()
    with ForwardPasses(loaded_tiny.model).installed() as passes:
        passes.hold()
        reply = asyncio.create_task(
            engine.generate(PreparedReply((), prompt(loaded_tiny, "hi"), GREEDY), cancel, quiet)
        )
        await passes.held()
        engine.close()
        assert not await asyncio.to_thread(engine.join, 0.2), "a reply is still held"
        cancel.cancel()
        passes.open()
        result = await asyncio.wait_for(reply, 60)
    assert result.finish_reason == "cancelled"
    assert await asyncio.to_thread(engine.join, 10)

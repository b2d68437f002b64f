import asyncio
import unicodedata
from pathlib import Path

import pytest
import torch

from generation.engines.base import PreparedReply
from generation.engines.single import SingleEngine
from generation.loading import LoadedModel, load_model
from generation.model_spec import ModelSpec
from generation.prompts import MessageTooLong, Turn
from generation.sampling import SamplingParams
from generation.stopping import CancelToken
from tests.generation.tokenizers import build_bert_chitchat_tokenizer
from tests.pace import forward_gate
from tests.tiny_model import build_tiny_gpt2

GREEDY = SamplingParams(temperature=0, max_new_tokens=20, repetition_penalty=1.0)


def prompt(loaded: LoadedModel, text: str) -> list[int]:
    return loaded.prompt_format.encode([Turn("user", text)])


async def collect(
    engine: SingleEngine, ids: list[int], params: SamplingParams, cancel: CancelToken | None = None
):
    pieces: list[str] = []

    async def on_text(text: str) -> None:
        pieces.append(text)

    result = await engine.generate(PreparedReply((), ids, params), cancel or CancelToken(), on_text)
    return pieces, result


async def test_streamed_text_equals_plain_generate(loaded_tiny: LoadedModel) -> None:
    engine = SingleEngine(loaded_tiny, slots=1, max_waiting=0)
    ids = prompt(loaded_tiny, "hello world")
    pieces, result = await collect(engine, ids, GREEDY)
    with torch.no_grad():
        plain = loaded_tiny.model.generate(
            torch.tensor([ids]),
            do_sample=False,
            max_new_tokens=20,
            pad_token_id=loaded_tiny.tokenizer.eos_token_id,
        )[0][len(ids) :]
    assert (
        "".join(pieces)
        == result.text
        == loaded_tiny.tokenizer.decode(plain, skip_special_tokens=True)
    )
    assert len(pieces) > 1
    assert result.completion_tokens == 20
    assert result.prompt_tokens == len(ids)
    assert result.finish_reason == "length"
    assert result.first_token_s is not None and result.first_token_s <= result.duration_s
    engine.close()


async def test_cancel_stops_the_model_within_one_step(
    loaded_tiny: LoadedModel, tmp_path: Path
) -> None:
    engine = SingleEngine(loaded_tiny, slots=1, max_waiting=0)
    cancel = CancelToken()
    seen = 0
    with forward_gate(tmp_path / "gate") as gate:

        async def on_text(text: str) -> None:
            nonlocal seen
            seen += 1
            if seen == 3:
                cancel.cancel()
                gate.open()

        gate.allow_more(5)  # the model waits after five tokens until the cancel
        result = await engine.generate(
            PreparedReply((), prompt(loaded_tiny, "story"), SamplingParams(max_new_tokens=1000)),
            cancel,
            on_text,
        )
    assert result.finish_reason == "cancelled"
    assert cancel.steps_after_cancel is not None and cancel.steps_after_cancel <= 1
    assert result.completion_tokens == cancel.steps <= 6
    engine.close()


async def test_cancelling_the_coroutine_stops_the_worker_thread(
    loaded_tiny: LoadedModel, tmp_path: Path
) -> None:
    engine = SingleEngine(loaded_tiny, slots=1, max_waiting=0)
    cancel = CancelToken()
    texts = asyncio.Queue[str]()
    with forward_gate(tmp_path / "gate") as gate:
        gate.allow_more(2)
        task = asyncio.create_task(
            engine.generate(
                PreparedReply((), prompt(loaded_tiny, "x"), SamplingParams(max_new_tokens=1000)),
                cancel,
                texts.put,
            )
        )
        await asyncio.wait_for(texts.get(), 30)
        task.cancel()
        await cancel.wait()
        gate.open()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert cancel.cancelled
    assert cancel.steps_after_cancel is not None and cancel.steps_after_cancel <= 1
    engine.close()


async def test_a_model_error_ends_the_reply_instead_of_hanging(loaded_tiny: LoadedModel) -> None:
    engine = SingleEngine(loaded_tiny, slots=1, max_waiting=0)
    too_long = [1] * 1100  # beyond the model's 1024 positions
    _, result = await asyncio.wait_for(collect(engine, too_long, GREEDY), timeout=30)
    assert result.finish_reason == "error"
    assert result.error
    engine.close()


async def test_loop_stays_responsive_while_generating(
    loaded_tiny: LoadedModel, tmp_path: Path
) -> None:
    engine = SingleEngine(loaded_tiny, slots=1, max_waiting=0)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    texts = asyncio.Queue[str]()
    with forward_gate(tmp_path / "gate") as gate:
        gate.allow_more(2)
        params = SamplingParams(temperature=0, max_new_tokens=100)
        generating = asyncio.create_task(
            engine.generate(
                PreparedReply((), prompt(loaded_tiny, "hi"), params), CancelToken(), texts.put
            )
        )
        for _ in range(2):
            await asyncio.wait_for(texts.get(), 30)
        # The model now waits inside its third forward pass: were that on the loop, neither
        # the ticker nor this sleep would run.
        mid_reply = ticks
        await asyncio.sleep(0.05)
        assert ticks > mid_reply, "the event loop kept running while the model worked"
        gate.open()
        result = await generating
    ticking.cancel()
    assert result.completion_tokens == 100
    engine.close()


async def test_chitchat_model_streams_chinese_without_spaces(tmp_path: Path) -> None:
    folder = build_tiny_gpt2(tmp_path / "chitchat", tokenizer_builder=build_bert_chitchat_tokenizer)
    loaded = load_model(ModelSpec(source=str(folder)))
    assert loaded.prompt_format.name == "chitchat"
    engine = SingleEngine(loaded, slots=1, max_waiting=0)
    torch.manual_seed(1)
    sampled = SamplingParams(
        temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, max_new_tokens=40
    )
    pieces, result = await collect(engine, prompt(loaded, "你好"), sampled)
    assert "".join(pieces) == result.text
    assert result.completion_tokens == 40
    wide = [ch for ch in result.text if unicodedata.east_asian_width(ch) in "WF"]
    assert wide, "the tiny model picked some Chinese characters"
    assert all(
        not (a in wide and b == " " and c in wide)
        for a, b, c in zip(result.text, result.text[1:], result.text[2:], strict=False)
    ), result.text
    engine.close()


async def test_a_message_over_the_token_limit_is_refused_before_fitting(
    loaded_tiny: LoadedModel,
) -> None:
    engine = SingleEngine(loaded_tiny, slots=1, max_waiting=0, max_message_tokens=40)
    # Ten characters, forty tokens: each rare CJK character is four byte tokens.
    allowed = [Turn("user", "\U00020000" * 10)]
    assert (await engine.prepare(allowed, SamplingParams())).prompt_tokens >= 40
    with pytest.raises(MessageTooLong) as refused:
        await engine.prepare([Turn("user", "\U00020000" * 10 + "a")], SamplingParams())
    assert str(refused.value) == (
        "your message is 41 tokens; the limit is 40 tokens (WXGPT_MAX_MESSAGE_TOKENS)"
    )
    engine.close()

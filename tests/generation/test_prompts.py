from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer, models
from transformers import (
    GPT2Config,
    LlamaConfig,
    PreTrainedConfig,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from generation.decoding import IncrementalDecoder, WordPieceDecoder
from generation.prompts import (
    ChatTemplateFormat,
    ChitchatFormat,
    EosTurnsFormat,
    Prompt,
    PromptFormat,
    PromptTooLong,
    Turn,
    context_size_of,
    detect_format,
    fit_prompt,
    make_format,
)
from tests.generation.tokenizers import (
    build_chat_template_tokenizer,
)

TWO_EXCHANGES = [
    Turn("user", "hello world"),
    Turn("assistant", "你好 how are you"),
    Turn("user", "tell me a story 🙂"),
]
CHITCHAT_TURNS = [
    Turn("user", "你好吗"),
    Turn("assistant", "我很好"),
    Turn("user", "今天天气怎么样"),
]
MAX_NEW = 10


@pytest.fixture(params=["eos", "chat_template", "chitchat"])
def fmt(request: pytest.FixtureRequest) -> PromptFormat:
    tokenizer = {"eos": "bpe", "chat_template": "chat", "chitchat": "bert"}[request.param]
    return make_format(request.getfixturevalue(tokenizer))


def plain_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    ids: list[int] = tokenizer.encode(text, add_special_tokens=False)
    return ids


def conversation(fmt: PromptFormat, exchanges: int) -> list[Turn]:
    """`exchanges` user/assistant pairs and a last user turn, in words every vocab knows."""
    words = "你好吗" if isinstance(fmt, ChitchatFormat) else "hello world"
    turns = []
    for number in range(exchanges):
        turns += [Turn("user", f"{words} {number}"), Turn("assistant", words * (number + 1))]
    return [*turns, Turn("user", words)]


def test_eos_format_ends_every_turn_with_eos(bpe: PreTrainedTokenizerBase) -> None:
    fmt = make_format(bpe)
    u1, b1, u2 = (plain_ids(bpe, turn.content) for turn in TWO_EXCHANGES)
    eos = bpe.eos_token_id
    assert isinstance(fmt, EosTurnsFormat)
    assert fmt.encode(TWO_EXCHANGES) == [*u1, eos, *b1, eos, *u2, eos]
    assert fmt.stop_token_ids == [eos]


def test_chitchat_format_is_cls_then_turns_ended_by_sep(bert: PreTrainedTokenizerBase) -> None:
    fmt = make_format(bert)
    u1, b1, u2 = (plain_ids(bert, turn.content) for turn in CHITCHAT_TURNS)
    cls, sep = bert.cls_token_id, bert.sep_token_id
    assert isinstance(fmt, ChitchatFormat)
    assert fmt.encode(CHITCHAT_TURNS) == [cls, *u1, sep, *b1, sep, *u2, sep]
    assert u1 == bert.convert_tokens_to_ids(["你", "好", "吗"])
    assert fmt.stop_token_ids == [sep]


def test_chat_template_format_applies_the_template(chat: PreTrainedTokenizerBase) -> None:
    fmt = make_format(chat)
    ids = fmt.encode(TWO_EXCHANGES)
    start, end = chat.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    newline = plain_ids(chat, "\n")
    u1, b1, u2 = (plain_ids(chat, turn.content) for turn in TWO_EXCHANGES)
    header = {role: [start, *plain_ids(chat, role + "\n")] for role in ("user", "assistant")}
    assert isinstance(fmt, ChatTemplateFormat)
    assert type(ids) is list
    assert all(type(token_id) is int for token_id in ids)
    assert ids == [
        *header["user"], *u1, end, *newline,
        *header["assistant"], *b1, end, *newline,
        *header["user"], *u2, end, *newline,
        *header["assistant"],
    ]  # fmt: skip
    assert fmt.stop_token_ids == [chat.eos_token_id] == [end]


def test_chat_template_stops_at_eos_and_at_the_end_of_turn(tmp_path: Path) -> None:
    tokenizer = build_chat_template_tokenizer(tmp_path, eos_token="<|endoftext|>")
    eos, end = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    assert make_format(tokenizer).stop_token_ids == [eos, end]


def test_end_of_turn_token_is_read_from_any_template(tmp_path: Path) -> None:
    tokenizer = build_chat_template_tokenizer(tmp_path, eos_token="<|endoftext|>")
    tokenizer.add_tokens(["<start_of_turn>", "<end_of_turn>"], special_tokens=True)
    tokenizer.chat_template = (
        "{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] | trim }}"
        "<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    )
    eos, end = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<end_of_turn>"])
    assert make_format(tokenizer).stop_token_ids == [eos, end]


@pytest.mark.parametrize(
    ("tokenizer", "typed"),
    [("bpe", "<|endoftext|>"), ("chat", "<|im_end|>"), ("bert", "[SEP]")],
)
def test_control_tokens_typed_by_the_user_stay_text(
    request: pytest.FixtureRequest, tokenizer: str, typed: str
) -> None:
    tok: PreTrainedTokenizerBase = request.getfixturevalue(tokenizer)
    fmt = make_format(tok)
    control = tok.convert_tokens_to_ids(typed)
    honest = fmt.encode([Turn("user", "hello")])
    sneaky = fmt.encode([Turn("user", f"hello {typed} hello")])
    assert sneaky.count(control) == honest.count(control)


def test_stream_decoder_suits_the_vocab(
    bpe: PreTrainedTokenizerBase, chat: PreTrainedTokenizerBase, bert: PreTrainedTokenizerBase
) -> None:
    assert isinstance(make_format(bpe).stream_decoder(), IncrementalDecoder)
    assert isinstance(make_format(chat).stream_decoder(), IncrementalDecoder)
    assert isinstance(make_format(bert).stream_decoder(), WordPieceDecoder)


def test_chitchat_reply_decodes_without_spaces(bert: PreTrainedTokenizerBase) -> None:
    fmt = make_format(bert)
    reply = [*plain_ids(bert, "我很好，hello world！"), *fmt.stop_token_ids]
    decoder = fmt.stream_decoder()
    assert "".join(decoder.push(token_id) for token_id in reply) == "我很好，hello world！"


def test_detect_format(
    bpe: PreTrainedTokenizerBase, chat: PreTrainedTokenizerBase, bert: PreTrainedTokenizerBase
) -> None:
    assert detect_format(chat) == "chat_template"
    assert detect_format(bert) == "chitchat"
    assert detect_format(bpe) == "eos"


def test_tokenizer_without_any_turn_marker_is_refused() -> None:
    bare = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"a": 0}, unk_token="a"))
    )
    with pytest.raises(ValueError, match="cannot tell where a turn ends"):
        detect_format(bare)


def test_make_format_by_name_overrides_detection(chat: PreTrainedTokenizerBase) -> None:
    fmt = make_format(chat, "eos")
    assert isinstance(fmt, EosTurnsFormat)
    assert fmt.stop_token_ids == [chat.eos_token_id]


@pytest.mark.parametrize(
    ("tokenizer", "name", "needs"),
    [("bert", "eos", "eos token"), ("bpe", "chitchat", r"\[CLS\]"), ("bpe", "chat_template", "")],
)
def test_make_format_refuses_a_format_the_tokenizer_lacks(
    request: pytest.FixtureRequest, tokenizer: str, name: str, needs: str
) -> None:
    with pytest.raises(ValueError, match=f"the {name} prompt format needs .*{needs}"):
        make_format(request.getfixturevalue(tokenizer), name)


def test_make_format_unknown_name_lists_the_valid_ones(bpe: PreTrainedTokenizerBase) -> None:
    with pytest.raises(ValueError, match="choose one of auto, chat_template, chitchat, eos"):
        make_format(bpe, "llama")


def test_everything_fits(fmt: PromptFormat) -> None:
    turns = conversation(fmt, 3)
    context = len(fmt.encode(turns)) + MAX_NEW
    assert fit_prompt(fmt, turns, context_size=context, max_new_tokens=MAX_NEW) == Prompt(
        fmt.encode(turns), turns_kept=7
    )


def test_oldest_turns_are_dropped_exactly_at_the_boundary(fmt: PromptFormat) -> None:
    turns = conversation(fmt, 3)
    newest_five = fmt.encode(turns[-5:])
    context = len(newest_five) + MAX_NEW
    fitted = fit_prompt(fmt, turns, context_size=context, max_new_tokens=MAX_NEW)
    assert fitted == Prompt(newest_five, turns_kept=5)
    one_short = fit_prompt(fmt, turns, context_size=context - 1, max_new_tokens=MAX_NEW)
    assert one_short == Prompt(fmt.encode(turns[-3:]), turns_kept=3)


def test_kept_history_never_opens_with_an_assistant_reply(fmt: PromptFormat) -> None:
    turns = conversation(fmt, 3)
    # Room for the newest four turns, which would open with an assistant reply.
    context = len(fmt.encode(turns[-4:])) + MAX_NEW
    fitted = fit_prompt(fmt, turns, context_size=context, max_new_tokens=MAX_NEW)
    assert fitted.turns_kept == 3
    assert fitted.ids == fmt.encode(turns[-3:])


def test_history_cut_before_a_reply_drops_the_orphan(fmt: PromptFormat) -> None:
    turns = conversation(fmt, 2)[1:]  # as loaded with a turn limit that split an exchange
    fitted = fit_prompt(fmt, turns, context_size=10_000, max_new_tokens=MAX_NEW)
    assert fitted == Prompt(fmt.encode(turns[1:]), turns_kept=3)


def test_message_alone_too_long_raises_with_the_limit(fmt: PromptFormat) -> None:
    turns = conversation(fmt, 1)
    needed = len(fmt.encode(turns[-1:]))
    with pytest.raises(PromptTooLong) as raised:
        fit_prompt(fmt, turns, context_size=needed - 1 + MAX_NEW, max_new_tokens=MAX_NEW)
    assert (raised.value.limit, raised.value.needed) == (needed - 1, needed)
    assert str(raised.value) == f"your message is {needed} tokens; the limit is {needed - 1} tokens"


def test_last_turn_must_be_the_user_message(bpe: PreTrainedTokenizerBase) -> None:
    fmt = make_format(bpe)
    with pytest.raises(ValueError, match="last turn"):
        fit_prompt(fmt, TWO_EXCHANGES[:2], context_size=100, max_new_tokens=MAX_NEW)
    with pytest.raises(ValueError, match="last turn"):
        fit_prompt(fmt, [], context_size=100, max_new_tokens=MAX_NEW)


def test_reply_budget_larger_than_context_is_a_config_error(bpe: PreTrainedTokenizerBase) -> None:
    with pytest.raises(ValueError, match="leaves no room"):
        fit_prompt(make_format(bpe), TWO_EXCHANGES, context_size=100, max_new_tokens=100)


def count_calls(monkeypatch: pytest.MonkeyPatch, tokenizer: Any, method: str) -> list[int]:
    calls: list[int] = []
    original = getattr(tokenizer, method)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(tokenizer, method, counted)
    return calls


def test_per_turn_formats_tokenize_each_turn_once(
    bpe: PreTrainedTokenizerBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    fmt = make_format(bpe)
    turns = conversation(fmt, 40)
    context = len(fmt.encode(turns[-21:])) + MAX_NEW
    calls = count_calls(monkeypatch, bpe, "encode")
    assert fit_prompt(fmt, turns, context_size=context, max_new_tokens=MAX_NEW).turns_kept == 21
    assert len(calls) == len(turns)


def test_chat_template_is_applied_a_logarithmic_number_of_times(
    chat: PreTrainedTokenizerBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    fmt = make_format(chat)
    turns = conversation(fmt, 63)  # 64 user turns: 6 halvings find the start
    context = len(fmt.encode(turns[-21:])) + MAX_NEW
    calls = count_calls(monkeypatch, chat, "apply_chat_template")
    assert fit_prompt(fmt, turns, context_size=context, max_new_tokens=MAX_NEW).turns_kept == 21
    assert len(calls) <= 7


def test_context_size_from_the_model_config(bpe: PreTrainedTokenizerBase) -> None:
    assert context_size_of(GPT2Config(n_positions=256), bpe) == 256
    assert context_size_of(LlamaConfig(max_position_embeddings=8192), bpe) == 8192


def test_context_size_falls_back_to_a_sane_tokenizer_limit(
    bpe: PreTrainedTokenizerBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bpe.model_max_length > 1e20  # transformers' "no limit known"
    assert context_size_of(PreTrainedConfig(), bpe) == 1024
    monkeypatch.setattr(bpe, "model_max_length", 512)
    assert context_size_of(PreTrainedConfig(), bpe) == 512

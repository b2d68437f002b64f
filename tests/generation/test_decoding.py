import random
from collections.abc import Callable
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerBase

from generation.decoding import (
    REPLACEMENT_CHAR,
    IncrementalDecoder,
    StreamDecoder,
    WordPieceDecoder,
)
from tests.generation.tokenizers import (
    build_bpe_tokenizer,
    build_chat_template_tokenizer,
    build_sentencepiece_style_tokenizer,
)

Builder = Callable[[Path], PreTrainedTokenizerBase]
MIXED_TEXT = "Hello world, 你好吗？雪花🙂 tell me a story ❤️ 吃饭了吗 👍🏽!"


def stream(decoder: StreamDecoder, ids: list[int]) -> list[str]:
    """Every non-empty piece the decoder gives, flush included."""
    pieces = [decoder.push(token_id) for token_id in ids]
    return [piece for piece in [*pieces, decoder.flush()] if piece]


def byte_level_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """One token per UTF-8 byte: every multi-byte character is split over tokens."""
    pre_tokenized = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text)
    symbols = [symbol for word, _ in pre_tokenized for symbol in word]
    ids: list[int] = tokenizer.convert_tokens_to_ids(symbols)
    return ids


def assert_streams_as_full_decode(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> None:
    decoder = IncrementalDecoder(tokenizer, tokenizer.all_special_ids)
    pieces = [decoder.push(token_id) for token_id in ids]
    assert not any(piece.endswith(REPLACEMENT_CHAR) for piece in pieces)
    assert "".join(pieces) + decoder.flush() == tokenizer.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("build", [build_bpe_tokenizer, build_chat_template_tokenizer])
def test_byte_level_stream_equals_full_decode_of_random_ids(build: Builder, tmp_path: Path) -> None:
    tokenizer = build(tmp_path)
    rng = random.Random(1)
    for _ in range(500):
        # Random ids include lone byte tokens, so characters are cut at every possible place.
        assert_streams_as_full_decode(
            tokenizer, rng.choices(range(len(tokenizer)), k=rng.randint(1, 30))
        )


def test_sentencepiece_stream_equals_full_decode_of_random_text(tmp_path: Path) -> None:
    tokenizer = build_sentencepiece_style_tokenizer(tmp_path)
    words = [t for t in tokenizer.get_vocab() if not t.startswith("<0x")]
    rng = random.Random(2)
    for _ in range(300):
        # Random tokens, and characters the vocab lacks, spelled as their UTF-8 bytes. Not
        # random byte tokens: ByteFallback turns a whole run of bytes into U+FFFD once any of
        # them is invalid, so invalid UTF-8 can change text already shown ("f" then "\ufffd").
        tokens: list[str] = []
        for _ in range(rng.randint(1, 20)):
            if rng.random() < 0.6:
                tokens.append(rng.choice(words))
            else:
                tokens += [f"<0x{byte:02X}>" for byte in rng.choice(MIXED_TEXT).encode()]
        ids = tokenizer.convert_tokens_to_ids(tokens)
        assert_streams_as_full_decode(tokenizer, ids)


@pytest.mark.parametrize("build", [build_bpe_tokenizer, build_sentencepiece_style_tokenizer])
def test_text_streams_in_whole_characters(build: Builder, tmp_path: Path) -> None:
    tokenizer = build(tmp_path)
    ids = tokenizer.encode(MIXED_TEXT, add_special_tokens=False)
    pieces = stream(IncrementalDecoder(tokenizer), ids)
    assert "".join(pieces) == MIXED_TEXT
    assert not any(REPLACEMENT_CHAR in piece for piece in pieces)


def test_characters_split_over_byte_tokens_stream_whole(bpe: PreTrainedTokenizerBase) -> None:
    ids = byte_level_ids(bpe, MIXED_TEXT)
    assert len(ids) == len(MIXED_TEXT.encode())
    pieces = stream(IncrementalDecoder(bpe), ids)
    assert "".join(pieces) == MIXED_TEXT
    assert "🙂" in pieces
    assert "👍🏽" not in pieces  # an emoji with a skin-tone modifier is two characters
    assert not any(REPLACEMENT_CHAR in piece for piece in pieces)


def test_held_back_bytes_wait_for_the_rest(bpe: PreTrainedTokenizerBase) -> None:
    first, second, third = byte_level_ids(bpe, "雪")
    decoder = IncrementalDecoder(bpe)
    assert [decoder.push(first), decoder.push(second), decoder.push(third)] == ["", "", "雪"]
    assert decoder.flush() == ""


def test_flush_gives_a_cut_off_character_as_replacement(bpe: PreTrainedTokenizerBase) -> None:
    ids = [*bpe.encode("ok", add_special_tokens=False), *byte_level_ids(bpe, "雪")[:2]]
    decoder = IncrementalDecoder(bpe)
    assert "".join(decoder.push(token_id) for token_id in ids) == "ok"
    assert decoder.flush() == REPLACEMENT_CHAR == bpe.decode(ids)[-1]


def test_sentencepiece_leading_spaces_survive_streaming(tmp_path: Path) -> None:
    tokenizer = build_sentencepiece_style_tokenizer(tmp_path)
    ids = tokenizer.encode("the cat sat on the mat", add_special_tokens=False)
    pieces = stream(IncrementalDecoder(tokenizer), ids)
    assert pieces[0] == "the"
    assert pieces[1:] == [" cat", " sat", " on", " the", " mat"]


def test_stop_ids_are_skipped_even_when_not_special(bpe: PreTrainedTokenizerBase) -> None:
    bpe.add_tokens(["<turn_end>"])  # a plain added token, as some templates end turns with
    turn_end = bpe.convert_tokens_to_ids("<turn_end>")
    hello = bpe.encode("hello", add_special_tokens=False)
    ids = [*hello, bpe.eos_token_id, turn_end, *hello]
    assert "".join(stream(IncrementalDecoder(bpe, [turn_end]), ids)) == "hellohello"
    assert "<turn_end>" in "".join(stream(IncrementalDecoder(bpe), ids))


def wordpiece_text(tokenizer: PreTrainedTokenizerBase, text: str) -> list[str]:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return stream(WordPieceDecoder(tokenizer), ids)


def test_chinese_decodes_without_spaces(bert: PreTrainedTokenizerBase) -> None:
    ids = bert.encode("你好吗", add_special_tokens=False)
    assert bert.decode(ids) == "你 好 吗"  # what a plain BERT decode would show
    assert stream(WordPieceDecoder(bert), ids) == ["你", "好", "吗"]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("hello world", "hello world"),
        ("playing cats", "playing cats"),
        ("hello 你好吗？ world", "hello你好吗？world"),
        ("你好，世界！", "你好，世界！"),
        ("hello, world!", "hello, world!"),
        ("ok. it's the cat (hello) ok?", "ok. it's the cat (hello) ok?"),
        ("3.14 1,000 world", "3.14 1,000 world"),
    ],
)
def test_wordpiece_spacing(bert: PreTrainedTokenizerBase, text: str, shown: str) -> None:
    assert "".join(wordpiece_text(bert, text)) == shown


def test_wordpiece_continuations_join_the_word_before(bert: PreTrainedTokenizerBase) -> None:
    assert wordpiece_text(bert, "playing cats") == ["play", "ing", " cat", "s"]


def test_wordpiece_hides_special_tokens(bert: PreTrainedTokenizerBase) -> None:
    ids = bert.convert_tokens_to_ids(["[CLS]", "你", "[UNK]", "好", "[PAD]", "[MASK]", "[SEP]"])
    assert "".join(stream(WordPieceDecoder(bert), ids)) == "你好"


def test_wordpiece_skips_extra_ids(bert: PreTrainedTokenizerBase) -> None:
    ids = bert.encode("你好吗", add_special_tokens=False)
    assert "".join(stream(WordPieceDecoder(bert, [ids[1]]), ids)) == "你吗"

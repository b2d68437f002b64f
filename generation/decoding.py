"""Streaming text out of a reply's token ids, one safe piece of whole characters at a time."""

import unicodedata
from collections.abc import Iterable
from typing import Protocol, cast

from transformers import PreTrainedTokenizerBase

REPLACEMENT_CHAR = "\ufffd"
# Punctuation after which the next latin word is spaced: clause ends and closing brackets.
_SPACED_AFTER = frozenset(",.!?;:)]}")
# Separators inside numbers ("3.14", "1,000", "10:30"), which BERT splits into three tokens.
_NUMBER_SEPARATORS = frozenset(".,:")
_OPENING_BRACKETS = frozenset("([{")


class StreamDecoder(Protocol):
    """Turns one reply's token ids, pushed one by one, into text that can be shown at once."""

    def push(self, token_id: int) -> str:
        """Feed one generated id; return the new text that is now safe to show ('' if none yet)."""
        ...

    def flush(self) -> str:
        """Text held back at the end of the reply."""
        ...


class IncrementalDecoder:
    """Byte-level BPE and SentencePiece replies, decoded with the offsets method of
    text-generation-inference: re-decode a short window, show what it adds."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, skip_ids: Iterable[int] = ()) -> None:
        self._tokenizer = tokenizer
        # Stop ids need not be special tokens (some templates end turns with plain added
        # tokens), so they are dropped here rather than left to skip_special_tokens.
        self._skip_ids = frozenset(skip_ids)
        # The window starts with the ids shown last (`_shown` of them): decoded again as left
        # context, so a token whose text depends on its neighbour (SentencePiece's leading
        # space, a UTF-8 sequence split over tokens) comes out as in a full decode.
        self._window: list[int] = []
        self._shown = 0

    def push(self, token_id: int) -> str:
        """Feed one generated id; return the new text that is now safe to show ('' if none yet)."""
        if token_id in self._skip_ids:
            return ""
        self._window.append(token_id)
        text = self._unshown_text()
        # A trailing replacement character is a UTF-8 sequence cut between tokens: wait for
        # the rest of it rather than show half a character.
        if not text or text.endswith(REPLACEMENT_CHAR):
            return ""
        self._window = self._window[self._shown :]
        self._shown = len(self._window)
        return text

    def flush(self) -> str:
        """Text held back at the end of the reply (a cut-off character shows as U+FFFD)."""
        text = self._unshown_text()
        self._window = []
        self._shown = 0
        return text

    def _unshown_text(self) -> str:
        shown = self._decode(self._window[: self._shown])
        return self._decode(self._window)[len(shown) :]

    def _decode(self, ids: list[int]) -> str:
        # No clean-up of spaces: it rewrites " ," differently depending on where a window
        # starts, and it changes what the model actually wrote.
        text = self._tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return cast(str, text)  # one sequence decodes to one string


class WordPieceDecoder:
    """GPT2-chitchat replies over a BERT vocab: Chinese without spaces, English words spaced.

    `##` pieces join the token before them; a wide (CJK, full-width) character is never
    spaced from its neighbours; latin words are spaced from each other and from the clause
    punctuation or closing bracket before them. Every special token is hidden, [UNK]
    included: it stands for a character the vocab lacks, and GPT2-chitchat keeps it out of
    sampling anyway.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, skip_ids: Iterable[int] = ()) -> None:
        self._tokenizer = tokenizer
        self._hidden_ids = frozenset(skip_ids) | frozenset(tokenizer.all_special_ids)
        self._tail = ""  # the last two characters shown: all the spacing rules look at

    def push(self, token_id: int) -> str:
        """Feed one generated id; return its text with the space before it, if any."""
        if token_id in self._hidden_ids:
            return ""
        token = cast(str, self._tokenizer.convert_ids_to_tokens(token_id))  # one id, one token
        if token.startswith("##") and len(token) > 2:
            piece = token[2:]
        else:
            piece = " " + token if _needs_space(self._tail, token) else token
        self._tail = (self._tail + piece)[-2:]
        return piece

    def flush(self) -> str:
        """Nothing is ever held back: every WordPiece token is whole characters."""
        return ""


def _needs_space(before: str, token: str) -> bool:
    """Whether a space goes between text ending in `before` and the whole-word `token`."""
    if not before:
        return False
    left, right = before[-1], token[0]
    if _is_wide(left) or _is_wide(right):
        return False
    if right.isalnum():
        if left.isalnum():
            return True
        if left in _NUMBER_SEPARATORS and right.isdigit() and before[:-1][-1:].isdigit():
            return False
        return left in _SPACED_AFTER
    return right in _OPENING_BRACKETS and (left.isalnum() or left in _SPACED_AFTER)


def _is_wide(char: str) -> bool:
    # East Asian Wide/Fullwidth covers CJK ideographs, kana, hangul and full-width
    # punctuation (，。！？), none of which take spaces around them.
    return unicodedata.east_asian_width(char) in ("W", "F")

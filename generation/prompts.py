"""Prompt formats (how a conversation becomes token ids) and chat memory (which turns fit)."""

import bisect
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import ClassVar, Literal, cast

from transformers import PreTrainedConfig, PreTrainedTokenizerBase

from generation.decoding import IncrementalDecoder, StreamDecoder, WordPieceDecoder
from generation.errors import GenerationError

Role = Literal["user", "assistant"]
SuffixEncoder = Callable[[int], list[int]]

# Config fields that hold the context length, by model family (GPT-2 has n_positions).
_CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length")
# Tokenizers without a known limit report about 1e30; anything this large is not a limit.
_SANE_TOKENIZER_LIMIT = 1_000_000
_FALLBACK_CONTEXT_SIZE = 1024
# Assistant text for rendering a template once to see which token follows a reply.
_PROBE_REPLY = "wxgpt-probe"


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: Role
    content: str


class PromptFormat(ABC):
    """How a conversation becomes prompt ids, and which ids end the reply."""

    name: ClassVar[str]

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer

    @abstractmethod
    def encode(self, turns: Sequence[Turn]) -> list[int]:
        """Prompt ids asking for the next assistant reply (the last turn is the user's)."""

    @property
    @abstractmethod
    def stop_token_ids(self) -> list[int]:
        """Ids that end a reply."""

    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder for one reply's token ids."""
        return IncrementalDecoder(self.tokenizer, self.stop_token_ids)

    def suffix_encoder(self, turns: Sequence[Turn]) -> SuffixEncoder:
        """A function from `start` to the prompt ids of `turns[start:]`."""
        return lambda start: self.encode(turns[start:])


class ChatTemplateFormat(PromptFormat):
    """The tokenizer's own chat template (ChatML, Llama 3, Gemma, ...)."""

    name = "chat_template"

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        if not tokenizer.chat_template:
            raise ValueError(
                "the chat_template prompt format needs a tokenizer with a chat template"
            )
        super().__init__(tokenizer)
        candidates = (tokenizer.eos_token_id, _end_of_turn_id(tokenizer))
        self._stop_ids = list(dict.fromkeys(c for c in candidates if c is not None))
        if not self._stop_ids:
            raise ValueError(
                "the tokenizer has no eos token and its chat template ends replies with no "
                "special token, so wxgpt cannot tell where a reply ends"
            )

    def encode(self, turns: Sequence[Turn]) -> list[int]:
        """Token ids of the template applied to `turns`, ending with the assistant header."""
        ids = self.tokenizer.apply_chat_template(
            _messages(turns),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=False,
            # A user who types "<|im_end|>" gets those characters, not a control token that
            # ends their turn early and lets them write a system turn.
            sanitize_control_tokens=True,
        )
        return cast(list[int], ids)  # one conversation, tokenized, without a dict

    @property
    def stop_token_ids(self) -> list[int]:
        """The eos id and the template's end-of-turn id where it has one."""
        return list(self._stop_ids)


class _SeparatedTurnsFormat(PromptFormat):
    """A fixed prefix, then each turn's own ids followed by one separator id, which also ends
    the reply."""

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, *, prefix: list[int], separator: int
    ) -> None:
        super().__init__(tokenizer)
        self._prefix = prefix
        self._separator = separator

    def encode(self, turns: Sequence[Turn]) -> list[int]:
        """The prefix, then each turn's ids and a separator."""
        return self.suffix_encoder(turns)(0)

    @property
    def stop_token_ids(self) -> list[int]:
        """The separator."""
        return [self._separator]

    def suffix_encoder(self, turns: Sequence[Turn]) -> SuffixEncoder:
        """Tokenizes each turn once: any window of turns is then a concatenation."""
        per_turn = [self._turn_ids(turn) for turn in turns]
        return lambda start: [*self._prefix, *chain.from_iterable(per_turn[start:])]

    def _turn_ids(self, turn: Turn) -> list[int]:
        # split_special_tokens: a user who types "[SEP]" or "<|endoftext|>" gets text, not a
        # turn boundary.
        ids = self.tokenizer.encode(
            turn.content, add_special_tokens=False, split_special_tokens=True
        )
        return [*ids, self._separator]


class ChitchatFormat(_SeparatedTurnsFormat):
    """GPT2-chitchat over a BERT vocab: [CLS] u1 [SEP] b1 [SEP] u2 [SEP]; replies end at [SEP]."""

    name = "chitchat"

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        if cls_id is None or sep_id is None:
            raise ValueError("the chitchat prompt format needs a tokenizer with [CLS] and [SEP]")
        super().__init__(tokenizer, prefix=[cls_id], separator=sep_id)

    def stream_decoder(self) -> StreamDecoder:
        """A WordPiece decoder: Chinese characters without spaces between them."""
        return WordPieceDecoder(self.tokenizer, self.stop_token_ids)


class EosTurnsFormat(_SeparatedTurnsFormat):
    """DialoGPT style: each turn's ids followed by eos; the reply ends at eos."""

    name = "eos"

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        eos_id = tokenizer.eos_token_id
        if eos_id is None:
            raise ValueError("the eos prompt format needs a tokenizer with an eos token")
        super().__init__(tokenizer, prefix=[], separator=eos_id)


FORMATS: dict[str, type[PromptFormat]] = {
    fmt.name: fmt for fmt in (ChatTemplateFormat, ChitchatFormat, EosTurnsFormat)
}


def detect_format(tokenizer: PreTrainedTokenizerBase) -> str:
    """The name of the prompt format the tokenizer was made for."""
    if tokenizer.chat_template:
        return ChatTemplateFormat.name
    if tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None:
        return ChitchatFormat.name
    if tokenizer.eos_token_id is not None:
        return EosTurnsFormat.name
    raise ValueError(
        "the tokenizer has no chat template, no [CLS]/[SEP] pair and no eos token, "
        "so wxgpt cannot tell where a turn ends"
    )


def make_format(tokenizer: PreTrainedTokenizerBase, name: str = "auto") -> PromptFormat:
    """The prompt format called `name`, or the detected one for "auto"; raises ValueError."""
    if name == "auto":
        name = detect_format(tokenizer)
    try:
        fmt = FORMATS[name]
    except KeyError:
        raise ValueError(
            f"unknown prompt format {name!r}; choose one of auto, {', '.join(FORMATS)}"
        ) from None
    return fmt(tokenizer)


class PromptTooLong(GenerationError):
    """The user's message alone, in its prompt format, leaves no room for the reply."""

    def __init__(self, *, limit: int, needed: int) -> None:
        super().__init__(f"your message is {needed} tokens; the limit is {limit} tokens")
        self.limit = limit
        self.needed = needed


class MessageTooLong(PromptTooLong):
    """The user's message is more tokens than the server allows in one message."""

    def __init__(self, *, limit: int, needed: int) -> None:
        GenerationError.__init__(
            self,
            f"your message is {needed} tokens; the limit is {limit} tokens "
            "(WXGPT_MAX_MESSAGE_TOKENS)",
        )
        self.limit = limit
        self.needed = needed


@dataclass(frozen=True)
class Prompt:
    """Prompt ids and how many of the newest turns they hold."""

    ids: list[int]
    turns_kept: int


def fit_prompt(
    fmt: PromptFormat, turns: Sequence[Turn], *, context_size: int, max_new_tokens: int
) -> Prompt:
    """The prompt of the newest turns that leaves `max_new_tokens` free; raises PromptTooLong."""
    if not turns or turns[-1].role != "user":
        raise ValueError("a prompt needs the user's message as its last turn")
    limit = context_size - max_new_tokens
    if limit < 1:
        raise ValueError(
            f"max_new_tokens ({max_new_tokens}) leaves no room for a prompt "
            f"in a context of {context_size} tokens"
        )
    encode_from = functools.cache(fmt.suffix_encoder(turns))
    # Kept history starts at a user turn: a reply whose question was cut off misleads the
    # model, and some templates (Gemma's) refuse a conversation that opens with one.
    starts = [i for i, turn in enumerate(turns) if turn.role == "user"]
    # Prompts shrink as their start moves on, so a binary search finds the longest that fits
    # in O(log n) encodings. For a chat template each is a fresh application of the template
    # (templates are not additive); per-turn formats tokenize every turn once and only
    # concatenate here.
    first = bisect.bisect_left(starts, True, key=lambda start: len(encode_from(start)) <= limit)
    if first == len(starts):
        raise PromptTooLong(limit=limit, needed=len(encode_from(starts[-1])))
    return Prompt(ids=encode_from(starts[first]), turns_kept=len(turns) - starts[first])


def context_size_of(model_config: PreTrainedConfig, tokenizer: PreTrainedTokenizerBase) -> int:
    """The model's context length in tokens, from its config, else its tokenizer, else 1024."""
    text_config = model_config.get_text_config()
    for field in _CONTEXT_FIELDS:
        value = getattr(text_config, field, None)
        if isinstance(value, int) and value > 0:
            return value
    if tokenizer.model_max_length < _SANE_TOKENIZER_LIMIT:
        return int(tokenizer.model_max_length)
    return _FALLBACK_CONTEXT_SIZE


def _messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    return [{"role": turn.role, "content": turn.content} for turn in turns]


def _end_of_turn_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The control token the template writes right after an assistant reply, if any."""
    # Read off the template itself rather than a list of known names (<|im_end|>,
    # <|eot_id|>, <end_of_turn>, ...), so a model nobody listed still stops.
    probe = [Turn("user", "hi"), Turn("assistant", _PROBE_REPLY)]
    rendered = cast(str, tokenizer.apply_chat_template(_messages(probe), tokenize=False))
    _, found, after_reply = rendered.rpartition(_PROBE_REPLY)
    if not found:
        return None
    ids = tokenizer.encode(after_reply.lstrip(), add_special_tokens=False)
    if ids and ids[0] in tokenizer.added_tokens_decoder:
        return int(ids[0])
    return None

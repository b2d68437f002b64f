"""The operator's word list, matched with an Aho-Corasick automaton after normalising the text.

Lists are dodged by writing a word in full-width letters (ＢＡＤ), in another case (BaD), or
with spaces and punctuation between its characters (b a-d); normalising both the words and
the text the same way (NFKC, casefold, then only letters and digits kept) catches all three.
"""

import asyncio
import time
import unicodedata
from collections.abc import Iterable

import ahocorasick

from storage import settings as stored

SETTING = "moderation.words"
MAX_WORDS = 10_000
MAX_WORD_CHARS = 64
# Every replica reads an edited list within this many seconds.
REFRESH_S = 5.0


def normalise(text: str) -> str:
    """The text as the matcher sees it: NFKC, casefolded, letters, digits and marks only."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(char for char in folded if unicodedata.category(char)[0] in "LNM")


class WordMatcher:
    """Finds any of a fixed set of words in a text, in one pass over it."""

    def __init__(self, words: Iterable[str]) -> None:
        self._automaton = ahocorasick.Automaton()
        for word in words:
            key = normalise(word)
            if key:
                self._automaton.add_word(key, word)
        self.empty = len(self._automaton) == 0
        if not self.empty:
            self._automaton.make_automaton()

    def find(self, text: str) -> str | None:
        """The first listed word (as the operator wrote it) found in `text`, or None."""
        if self.empty:
            return None
        for _, word in self._automaton.iter(normalise(text)):
            return str(word)
        return None


def clean_words(words: Iterable[str]) -> list[str]:
    """The list as stored: stripped, without blanks or repeats, in the operator's order.

    Raises ValueError naming the limit that a word or the list breaks.
    """
    cleaned: dict[str, str] = {}
    for raw in words:
        word = raw.strip()
        if not word:
            continue
        if len(word) > MAX_WORD_CHARS:
            raise ValueError(f"a word may have at most {MAX_WORD_CHARS} characters: {word[:20]}…")
        if not normalise(word):
            raise ValueError(f"{word!r} has no letter or digit, so it would match nothing")
        cleaned.setdefault(normalise(word), word)
    if len(cleaned) > MAX_WORDS:
        raise ValueError(f"the word list may have at most {MAX_WORDS} words, not {len(cleaned)}")
    return list(cleaned.values())


async def load_words() -> list[str]:
    """The stored word list."""
    value = (await stored.get_settings(SETTING)).get(SETTING, [])
    return [word for word in value if isinstance(word, str)] if isinstance(value, list) else []


async def save_words(words: list[str]) -> list[str]:
    """Clean and store the word list; raises ValueError for a bad one."""
    cleaned = clean_words(words)
    await stored.set_settings({SETTING: cleaned})
    return cleaned


class WordList:
    """This replica's matcher for the stored list, rebuilt when the list may have changed."""

    def __init__(self) -> None:
        self._matcher = WordMatcher([])
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def find(self, text: str) -> str | None:
        """The first listed word in `text`, or None."""
        return (await self._current()).find(text)

    def invalidate(self) -> None:
        """Read the list again before the next check (it was just edited here)."""
        self._loaded_at = None

    async def _current(self) -> WordMatcher:
        loaded = self._loaded_at
        if loaded is not None and time.monotonic() - loaded < REFRESH_S:
            return self._matcher
        async with self._lock:
            if self._loaded_at is None or time.monotonic() - self._loaded_at >= REFRESH_S:
                words = await load_words()
                # A list of thousands of words takes milliseconds to build: off the loop.
                self._matcher = await asyncio.to_thread(WordMatcher, words)
                self._loaded_at = time.monotonic()
        return self._matcher

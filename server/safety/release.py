"""A reply's text released to the user in checked pieces, so nothing risky reaches a screen.

The engine's text is held back until a piece ends: at a sentence end (once the piece has a
few characters) or at `max_chars`, whichever comes first. Each piece is checked in order on
a task of its own while the model goes on generating, and only a piece that passed is
passed on. The word list also sees the end of the text already released, so a listed word
split across two pieces is still found.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from server.safety.checks import CheckUnavailable, ContentChecker, Verdict
from server.safety.wechat import Scene
from server.safety.words import MAX_WORD_CHARS

logger = logging.getLogger(__name__)

SENTENCE_ENDS = frozenset("。！？!?.;；…\n")
# Below this a sentence end does not end a piece: "1." or "OK." alone is not worth a check.
MIN_PIECE_CHARS = 8


def cut_piece(pending: str, max_chars: int) -> int:
    """Where the first piece of `pending` ends, or 0 if it has no whole piece yet."""
    for index, char in enumerate(pending[:max_chars]):
        if char in SENTENCE_ENDS and index + 1 >= MIN_PIECE_CHARS:
            return index + 1
    return max_chars if len(pending) >= max_chars else 0


class CheckedRelease:
    """Between an engine and the live reply: `feed` takes the engine's text, `release` gets
    the checked pieces. A risky piece, or a failed check, stops the reply through `stop`."""

    def __init__(
        self,
        checker: ContentChecker,
        openid: str,
        *,
        max_chars: int,
        release: Callable[[str], Awaitable[None]],
        stop: Callable[[], None],
    ) -> None:
        self._checker = checker
        self._openid = openid
        self._max_chars = max_chars
        self._release = release
        self._stop = stop
        self._pending = ""
        self._released_tail = ""
        self._pieces: asyncio.Queue[str | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.blocked: Verdict | None = None
        self.blocked_piece = ""
        self.for_review: list[tuple[str, Verdict]] = []
        self.failure: str | None = None

    @property
    def stopped(self) -> bool:
        """A piece was blocked or could not be checked: nothing more is released."""
        return self.blocked is not None or self.failure is not None

    async def feed(self, text: str) -> None:
        """Take the engine's next text; whole pieces go to be checked."""
        self._pending += text
        while not self.stopped and (end := cut_piece(self._pending, self._max_chars)):
            self._queue(self._pending[:end])
            self._pending = self._pending[end:]

    async def close(self) -> None:
        """The engine is done: check and release the rest, and wait for every check."""
        if self._pending and not self.stopped:
            self._queue(self._pending)
        self._pending = ""
        if self._worker is not None:
            self._pieces.put_nowait(None)
            await self._worker

    def _queue(self, piece: str) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._check_pieces())
        self._pieces.put_nowait(piece)

    async def _check_pieces(self) -> None:
        while (piece := await self._pieces.get()) is not None:
            if self.stopped:
                continue
            try:
                verdict = await self._checker.check(
                    piece, self._openid, Scene.COMMENT, context=self._released_tail
                )
            except CheckUnavailable as exc:
                self.failure = str(exc)
            except Exception:
                logger.exception("a reply's text could not be checked")
                self.failure = "the content check failed"
            else:
                if verdict.blocked:
                    self.blocked, self.blocked_piece = verdict, piece
                else:
                    if verdict.for_review:
                        self.for_review.append((piece, verdict))
                    self._released_tail = (self._released_tail + piece)[-MAX_WORD_CHARS:]
                    await self._release(piece)
                    continue
            self._stop()

"""One verdict on a piece of text: the local word list first, then WeChat's check.

The word list runs first because it is free and works offline; only text it lets through
is sent to WeChat (when configured). When WeChat gives no verdict (no answer in time, an
error, over the call limit), the failure mode decides: `closed` refuses the text (the user
may try again; nothing is charged), `open` lets it through and files it for review.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from server.safety.wechat import Scene, WeChatChecker, WeChatUnavailable
from server.safety.words import WordList

logger = logging.getLogger(__name__)

FailureMode = Literal["open", "closed"]
# Told each verdict as (checker, verdict), for /metrics.
VerdictHook = Callable[[str, str], None]


class CheckUnavailable(Exception):
    """The text could not be checked and the failure mode is `closed`."""


@dataclass(frozen=True)
class Verdict:
    """What the checks decided: `verdict` is pass, review, risky or unchecked."""

    verdict: str
    checker: str | None = None
    label: str = ""

    @property
    def blocked(self) -> bool:
        """The text must not be shown."""
        return self.verdict == "risky"

    @property
    def for_review(self) -> bool:
        """Shown, but filed for an operator to look at."""
        return self.verdict in ("review", "unchecked")


PASS = Verdict("pass")


class ContentChecker:
    """Checks user and model text against the word list and, if configured, WeChat."""

    def __init__(
        self,
        words: WordList,
        wechat: WeChatChecker | None,
        failure_mode: FailureMode,
        on_verdict: VerdictHook | None = None,
    ) -> None:
        self.words = words
        self._wechat = wechat
        self._failure_mode = failure_mode
        self._on_verdict = on_verdict or (lambda checker, verdict: None)

    async def check(self, text: str, openid: str, scene: Scene, context: str = "") -> Verdict:
        """The verdict on `text`; raises CheckUnavailable when WeChat failed and mode is closed.

        `context` is text just before it that was checked already: the word list looks
        across the seam, WeChat sees `text` alone.
        """
        word = await self.words.find(context + text)
        self._on_verdict("words", "pass" if word is None else "risky")
        if word is not None:
            return Verdict("risky", "words", word)
        if self._wechat is None:
            return PASS
        try:
            answer = await self._wechat.check(text, openid, scene)
        except WeChatUnavailable as exc:
            self._on_verdict("wechat", "unavailable")
            logger.warning("WeChat content check failed (mode %s): %s", self._failure_mode, exc)
            if self._failure_mode == "closed":
                raise CheckUnavailable(str(exc)) from None
            return Verdict("unchecked", "wechat")
        self._on_verdict("wechat", answer.suggest)
        if answer.suggest == "pass":
            return PASS
        return Verdict(answer.suggest, "wechat", str(answer.label))

    async def close(self) -> None:
        """Close WeChat's connections."""
        if self._wechat is not None:
            await self._wechat.close()

"""Context fitting on the engine's side of the seam, for engines that tokenise locally."""

import asyncio
import dataclasses
import logging
from collections.abc import Sequence

from generation.engines.base import PreparedReply
from generation.prompts import MessageTooLong, PromptFormat, Turn, fit_prompt
from generation.sampling import SamplingParams

logger = logging.getLogger(__name__)


class PromptPreparer:
    """Turns a conversation into the prompt ids that fit a context of `context_size` tokens."""

    def __init__(
        self, prompt_format: PromptFormat, context_size: int, max_message_tokens: int | None = None
    ) -> None:
        self.prompt_format = prompt_format
        self.context_size = context_size
        self.max_message_tokens = max_message_tokens

    async def prepare(self, turns: Sequence[Turn], params: SamplingParams) -> PreparedReply:
        """`fit` in a worker thread: tokenising a long conversation must not hold the loop."""
        return await asyncio.to_thread(self.fit, turns, params)

    def fit(self, turns: Sequence[Turn], params: SamplingParams) -> PreparedReply:
        """The newest turns that fit beside the reply; raises PromptTooLong, and
        MessageTooLong for a message of more than `max_message_tokens` tokens."""
        self._check_message(turns[-1].content)
        params = self._fit_reply_length(params)
        prompt = fit_prompt(
            self.prompt_format,
            turns,
            context_size=self.context_size,
            max_new_tokens=params.max_new_tokens,
        )
        kept = tuple(turns[len(turns) - prompt.turns_kept :])
        return PreparedReply(turns=kept, prompt_ids=prompt.ids, params=params)

    def _check_message(self, content: str) -> None:
        """Refuse a message of more tokens than allowed: characters alone do not bound its
        cost (2000 rare CJK characters came to 8,022 tokens)."""
        limit = self.max_message_tokens
        if limit is None:
            return
        tokens = len(self.prompt_format.tokenizer.encode(content, add_special_tokens=False))
        if tokens > limit:
            raise MessageTooLong(limit=limit, needed=tokens)

    def _fit_reply_length(self, params: SamplingParams) -> SamplingParams:
        """Cap max_new_tokens at half the context, so a setting too big for this model still
        leaves room for the question instead of failing every reply."""
        cap = self.context_size // 2
        if params.max_new_tokens <= cap:
            return params
        logger.warning(
            "max_new_tokens %d does not fit the model's %d-token context; using %d",
            params.max_new_tokens,
            self.context_size,
            cap,
        )
        return dataclasses.replace(params, max_new_tokens=cap)

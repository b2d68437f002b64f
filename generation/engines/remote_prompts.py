"""The conversation as the remote engine sends it: the kept turns as chat messages, or the
prompt wxgpt built as text, with every control token a user typed kept as plain text.

A local engine tokenises the user's text so that "<|im_end|>" typed by a user stays those
characters. An inference server tokenises the text it is sent, and would read the same
characters as the end of the user's turn; a word joiner (U+2060, invisible) after the first
character keeps the text and breaks the token.
"""

import re
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from generation.prompts import Turn

WORD_JOINER = "\u2060"


class RemotePrompts:
    """Builds what is sent for a reply, from the kept turns or the fitted prompt ids."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        control = {i: t.content for i, t in tokenizer.added_tokens_decoder.items() if t.special}
        self._control = control
        spelled = sorted({s for s in control.values() if len(s) > 1}, key=len, reverse=True)
        self._spelled = re.compile("|".join(map(re.escape, spelled))) if spelled else None

    def defuse(self, text: str) -> str:
        """`text` with every control token it spells broken by a word joiner."""
        if self._spelled is None:
            return text
        return self._spelled.sub(lambda m: m[0][0] + WORD_JOINER + m[0][1:], text)

    def spells_control(self, turns: Sequence[Turn]) -> bool:
        """Whether any turn spells a control token (the server then counts other tokens)."""
        return self._spelled is not None and any(self._spelled.search(t.content) for t in turns)

    def messages(self, turns: Sequence[Turn]) -> list[dict[str, str]]:
        """Chat messages for the server's chat template."""
        return [{"role": t.role, "content": self.defuse(t.content)} for t in turns]

    def text(self, prompt_ids: Sequence[int]) -> str:
        """The prompt as text: the control tokens wxgpt put in spelled out, the turns' text
        between them defused (blocking: it decodes)."""
        parts: list[str] = []
        run: list[int] = []
        ids: list[int | None] = [*prompt_ids, None]  # None: the end, flush the last run
        for token_id in ids:
            if token_id is not None and token_id not in self._control:
                run.append(token_id)
                continue
            text = self._tokenizer.decode(run, clean_up_tokenization_spaces=False)
            parts.append(self.defuse(str(text)))
            run = []
            if token_id is not None:
                parts.append(self._control[token_id])
        return "".join(parts)

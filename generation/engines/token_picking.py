"""The batched engine's choice of each reply's next token, made as `generate` makes it."""

import torch
from transformers import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from generation.sampling import SamplingParams


class TokenPicker:
    """Picks next tokens with one reply's sampling settings, through the processors
    `generate` builds from them, in its order."""

    def __init__(self, params: SamplingParams) -> None:
        self.params = params
        self._processors = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            self._processors.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
        if params.greedy:
            return
        if params.temperature != 1.0:
            self._processors.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k != 0:
            self._processors.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            self._processors.append(TopPLogitsWarper(params.top_p))

    def pick(self, histories: list[list[int]], logits: torch.Tensor) -> list[int]:
        """The next token of each row, given its ids so far and the float32 logits of its
        last position (rows, vocab), all rows with these settings."""
        width = max(len(ids) for ids in histories)
        # Rows are padded with their own last id: the repetition penalty counts each id in a
        # row once, so the padding changes no score.
        padded = [ids + ids[-1:] * (width - len(ids)) for ids in histories]
        history = torch.tensor(padded, dtype=torch.long, device=logits.device)
        scores = self._processors(history, logits)  # type: ignore[arg-type]
        if self.params.greedy:
            picked = scores.argmax(dim=-1)
        else:
            picked = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        return [int(token) for token in picked.tolist()]

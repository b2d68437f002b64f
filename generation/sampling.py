"""Sampling settings for one reply and their translation into `generate` arguments."""

from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)


@dataclass(frozen=True)
class SamplingParams:
    """How the next reply is sampled; temperature 0 means greedy decoding."""

    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    max_new_tokens: int = 256

    @property
    def choice(self) -> tuple[float, int, float, float]:
        """What decides the next token: replies alike in this are sampled together."""
        return (self.temperature, self.top_k, self.top_p, self.repetition_penalty)

    @property
    def greedy(self) -> bool:
        """Whether the most likely token is always taken."""
        return self.temperature <= 0

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model.generate`."""
        common: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
        }
        if self.greedy:
            return {**common, "do_sample": False, "temperature": None, "top_k": None, "top_p": None}
        return {
            **common,
            "do_sample": True,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
        }

    def logits_processors(self) -> LogitsProcessorList:
        """The processors `generate` builds from `generate_kwargs`, in its order."""
        processors = LogitsProcessorList()
        if self.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(self.repetition_penalty))
        if self.greedy:
            return processors
        if self.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(self.temperature))
        if self.top_k != 0:
            processors.append(TopKLogitsWarper(self.top_k))
        if self.top_p < 1.0:
            processors.append(TopPLogitsWarper(self.top_p))
        return processors

    def pick(
        self, processors: LogitsProcessorList, histories: list[list[int]], logits: torch.Tensor
    ) -> list[int]:
        """The next token of each row, given its ids so far and the float32 logits of its
        last position (rows, vocab), all rows with these settings and `processors`."""
        width = max(len(ids) for ids in histories)
        # Rows are padded with their own last id: the repetition penalty counts each id in a
        # row once, so the padding changes no score.
        padded = [ids + ids[-1:] * (width - len(ids)) for ids in histories]
        history = torch.tensor(padded, dtype=torch.long, device=logits.device)
        scores = processors(history, logits)  # type: ignore[arg-type]
        if self.greedy:
            picked = scores.argmax(dim=-1)
        else:
            picked = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        return [int(token) for token in picked.tolist()]

"""Sampling settings for one reply and their translation into `generate` arguments (plain
values: the server's settings and commands read them without loading torch)."""

from dataclasses import dataclass
from typing import Any


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

"""Sampling settings for one reply and their translation into `generate` arguments."""

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

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model.generate`."""
        common: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
        }
        if self.temperature <= 0:
            return {**common, "do_sample": False, "temperature": None, "top_k": None, "top_p": None}
        return {
            **common,
            "do_sample": True,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
        }

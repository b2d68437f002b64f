"""A tiny GPT-2 built by the test: random weights, a tokenizer trained on a few lines."""

from collections.abc import Callable
from pathlib import Path

import torch
from transformers import (
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerBase,
)

from tests.generation.tokenizers import build_bpe_tokenizer


def build_tiny_gpt2(
    directory: Path,
    *,
    n_positions: int = 1024,
    tokenizer_builder: Callable[[Path], PreTrainedTokenizerBase] = build_bpe_tokenizer,
) -> Path:
    """Save a tiny GPT-2 and its tokenizer to `directory` (loadable with from_pretrained)."""
    tokenizer = tokenizer_builder(directory)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_layer=2,
        n_embd=64,
        n_head=2,
        n_positions=n_positions,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    # Random weights would pick special tokens (they decode to nothing) and lone UTF-8 bytes
    # (no whole character until the sequence completes, which random picks never do). A zero
    # row of the tied embedding gives such a token logit 0, below the best ordinary token.
    unshowable = set(tokenizer.all_special_ids) | {
        token_id for token_id in range(len(tokenizer)) if "\ufffd" in tokenizer.decode([token_id])
    }
    with torch.no_grad():
        for token_id in unshowable:
            model.transformer.wte.weight[token_id].zero_()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    model.save_pretrained(directory)
    return directory


def build_tiny_sliding_window(directory: Path) -> Path:
    """A tiny Mistral whose layers attend through a sliding window (a cache that cannot be
    left-padded and merged), with the test tokenizer."""
    tokenizer = build_bpe_tokenizer(directory)
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        sliding_window=16,
        max_position_embeddings=256,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    MistralForCausalLM(config).save_pretrained(directory)
    return directory

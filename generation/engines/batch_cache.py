"""Several sequences' KV caches side by side, left-padded to one length, stepped together."""

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeGuard

import torch
from transformers import DynamicCache, PreTrainedConfig
from transformers.cache_utils import DynamicLayer


class UnsupportedCache(RuntimeError):
    """The model's cache cannot be padded and merged (sliding windows, recurrent state)."""


def check_joinable(config: PreTrainedConfig) -> None:
    """Raise UnsupportedCache unless the cache a model with `config` builds can be joined: so
    that a model the batched engine cannot serve is refused at start, not at the first reply."""
    layers = DynamicCache(config=config).layers
    if not layers or not all(_is_plain(layer) for layer in layers):
        raise _unsupported(layers)


def cache_argument(model: Any, cache: DynamicCache | None) -> dict[str, DynamicCache | None]:
    """`cache` as the model's forward pass is given it: transformers names it `cache` from
    5.24 on (the old name, `past_key_values`, goes in 5.40), and wxgpt runs on 5.x before too."""
    return {_cache_keyword(type(model).forward): cache}


@functools.cache
def _cache_keyword(forward: Callable[..., object]) -> str:
    parameters = inspect.signature(forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


# A row may be padded to twice its own length, or this many tokens more if that is more:
# short prompts of different lengths still share a batch.
PADDING_SLACK = 512


def split_rows(
    cache: DynamicCache, config: PreTrainedConfig, pads: list[int]
) -> list[DynamicCache]:
    """One cache per row of a left-padded batch's cache, each without its padding."""
    layers = _plain_layers(cache)
    rows = []
    for row, pad in enumerate(pads):
        own = DynamicCache(config=config)
        for index, layer in enumerate(layers):
            keys, values = _keys_values(layer)
            own.update(keys[row : row + 1, :, pad:], values[row : row + 1, :, pad:], index)
        rows.append(own)
    return rows


class BatchCache:
    """Rows join with their own prefilled cache and leave at any step; padding is masked out.

    Every row attends over the batch's whole width, so a row padded to a much longer one
    pays for it in each step (time and memory); `fits` keeps such rows apart.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Drop every row."""
        self.cache: DynamicCache | None = None
        # 1 where a row has a real token, 0 where it is left padding.
        self.mask = torch.zeros((0, 0), dtype=torch.long)
        self.positions: list[int] = []

    @property
    def rows(self) -> int:
        """How many sequences are in the batch."""
        return len(self.positions)

    @property
    def width(self) -> int:
        """How many positions every row attends over (its own and left padding)."""
        return int(self.mask.shape[1])

    def fits(self, length: int) -> bool:
        """Whether a row of `length` tokens may join without any row, itself included, being
        padded beyond twice its length or PADDING_SLACK tokens more."""
        if not self.positions:
            return True
        shortest = min(*self.positions, length)
        return max(self.width, length) <= max(2 * shortest, shortest + PADDING_SLACK)

    def padding_for(self, length: int) -> int:
        """Padding positions that a row of `length` tokens adds to the batch if it joins."""
        if length >= self.width:
            return (length - self.width) * self.rows
        return self.width - length

    def join(self, cache: DynamicCache) -> None:
        """Add one sequence's prefilled cache (batch size 1) as the last row.

        All-or-nothing: the merged tensors are built beside the batch's own and swapped in
        only once every layer is built, so a join that fails (out of memory, a cache of
        another shape) leaves the running rows as they were.
        """
        layers = _plain_layers(cache)
        length = cache.get_seq_length()
        device = _keys_values(layers[0])[0].device
        row_mask = torch.ones((1, length), dtype=torch.long, device=device)
        if self.cache is None:
            self.cache, self.mask, self.positions = cache, row_mask, [length]
            return
        width = max(length, self.mask.shape[1])
        mine = _plain_layers(self.cache)
        if len(mine) != len(layers):
            raise ValueError(f"a cache of {len(layers)} layers cannot join one of {len(mine)}")
        merged = [
            tuple(
                torch.cat([_pad_left(own, width), _pad_left(new, width)])
                for own, new in zip(_keys_values(layer), _keys_values(theirs), strict=True)
            )
            for layer, theirs in zip(mine, layers, strict=True)
        ]
        mask = torch.cat([_pad_left(self.mask, width), _pad_left(row_mask, width)])
        for layer, (keys, values) in zip(mine, merged, strict=True):
            layer.keys, layer.values = keys, values
        self.mask = mask
        self.positions.append(length)

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows, in this order, and drop padding no row needs any more."""
        if not rows:
            self.clear()
            return
        assert self.cache is not None
        index = torch.tensor(rows, device=self.mask.device)
        mask = self.mask.index_select(0, index)
        # Columns that are padding in every remaining row are dropped from the left.
        start = int(mask.any(dim=0).to(torch.long).argmax().item())
        self.mask = mask[:, start:]
        for layer in _plain_layers(self.cache):
            keys, values = _keys_values(layer)
            layer.keys = keys.index_select(0, index)[:, :, start:]
            layer.values = values.index_select(0, index)[:, :, start:]
        self.positions = [self.positions[row] for row in rows]

    def step(self, model: Any, last_tokens: list[int]) -> torch.Tensor:
        """One decoding step for every row; the float32 logits of the new position (rows, vocab)."""
        device = self.mask.device
        mask = torch.cat(
            [self.mask, torch.ones((self.rows, 1), dtype=torch.long, device=device)], 1
        )
        output = model(
            input_ids=torch.tensor(last_tokens, device=device).unsqueeze(1),
            attention_mask=mask,
            position_ids=torch.tensor(self.positions, device=device).unsqueeze(1),
            use_cache=True,
            **cache_argument(model, self.cache),
        )
        self.mask = mask
        self.positions = [position + 1 for position in self.positions]
        logits: torch.Tensor = output.logits[:, -1].to(dtype=torch.float32)
        return logits


def _is_plain(layer: object) -> TypeGuard[DynamicLayer]:
    return isinstance(layer, DynamicLayer) and not layer.is_sliding


def _plain_layers(cache: DynamicCache) -> list[DynamicLayer]:
    layers = [layer for layer in cache.layers if _is_plain(layer) and layer.is_initialized]
    if len(layers) != len(cache.layers) or not layers:
        raise _unsupported(cache.layers)
    return layers


def _unsupported(layers: list[Any]) -> UnsupportedCache:
    kinds = sorted({type(layer).__name__ for layer in layers}) or ["no layers"]
    return UnsupportedCache(
        f"the batched engine needs a full-attention cache in every layer; this model's "
        f"cache has {', '.join(kinds)} (use WXGPT_ENGINE=single)"
    )


def _keys_values(layer: DynamicLayer) -> tuple[torch.Tensor, torch.Tensor]:
    # _plain_layers only lets initialised layers through.
    assert layer.keys is not None
    assert layer.values is not None
    return layer.keys, layer.values


def _pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    # The length is dim 1 of a mask (rows, length) and dim 2 of keys (rows, heads, length, dim).
    dim = 1 if tensor.dim() == 2 else 2
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)

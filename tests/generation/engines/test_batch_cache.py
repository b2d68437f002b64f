"""The KV cache handed to a model's forward pass under the name that model's forward takes."""

import warnings

import torch
from transformers import DynamicCache

from generation.engines.batch_cache import cache_argument
from generation.loading import LoadedModel


class _Renamed(torch.nn.Module):
    def forward(self, input_ids: torch.Tensor, cache: DynamicCache | None = None) -> None:
        """A forward pass as transformers spells it from 5.24 on."""


class _Before(torch.nn.Module):
    def forward(self, input_ids: torch.Tensor, past_key_values: DynamicCache | None = None) -> None:
        """A forward pass as transformers spelled it before 5.24."""


def test_the_cache_goes_by_the_name_the_forward_pass_takes() -> None:
    cache = DynamicCache()
    assert cache_argument(_Renamed(), cache) == {"cache": cache}
    assert cache_argument(_Before(), cache) == {"past_key_values": cache}


def test_the_installed_transformers_takes_the_cache_without_a_deprecation(
    loaded_tiny: LoadedModel,
) -> None:
    model = loaded_tiny.model
    cache = DynamicCache(config=model.config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            model(
                input_ids=torch.tensor([[1, 2, 3]]), use_cache=True, **cache_argument(model, cache)
            )
    assert cache.get_seq_length() == 3

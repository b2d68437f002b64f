"""Giving memory back to the system once a long reply's caches are freed.

glibc's allocator keeps freed heap memory for reuse, and the cache of a prompt prefilled in
chunks is freed in pieces scattered over the heap, so without help the server's resident
memory stays at the peak of its longest reply (measured here: +23% after one 2048-token
message, in bench/long_prompt.py). malloc_trim(0) returns the free pages; other C libraries
have no such call and are left alone.
"""

import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable

import torch

logger = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def give_back_freed_memory(device: str) -> None:
    """Return memory freed by the process to the system (on a GPU: torch's cached blocks)."""
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        return
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

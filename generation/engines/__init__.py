"""The engines a server can run replies on, picked by name, and the holder that starts one.

Each name maps to "module:Class" and is imported only when picked (as uvicorn picks its
loops), so an engine's dependencies load only where it runs.
"""

import importlib
from typing import Protocol, cast, get_args

from generation.engine_config import EngineConfig, EngineKind
from generation.engines.base import EngineHealth, ReplyEngine

ENGINES: dict[str, str] = {
    "single": "generation.engines.single:SingleEngine",
    "batched": "generation.engines.batched:BatchingEngine",
    "remote": "generation.engines.remote:RemoteEngine",
}
assert set(ENGINES) == set(get_args(EngineKind))


class _EngineClass(Protocol):
    def start(self, config: EngineConfig) -> ReplyEngine: ...


def engine_class(kind: str) -> _EngineClass:
    """The class registered under `kind`; raises ValueError naming the choices."""
    try:
        module_name, _, class_name = ENGINES[kind].partition(":")
    except KeyError:
        raise ValueError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}") from None
    return cast(_EngineClass, getattr(importlib.import_module(module_name), class_name))


def start_engine(kind: str, config: EngineConfig) -> ReplyEngine:
    """Start the engine called `kind` (blocking: it loads the model)."""
    return engine_class(kind).start(config)


class EngineHolder:
    """The engine once it has started, or why it has not (yet)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.engine: ReplyEngine | None = None
        self.error: str | None = None

    def health(self) -> EngineHealth:
        """The engine's own health once started; before that, loading or failed to load."""
        if self.error is not None:
            return EngineHealth(False, f"model failed to load: {self.error}")
        if self.engine is None:
            return EngineHealth(False, "model is loading")
        return self.engine.health()

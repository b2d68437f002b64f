"""The OpenAI-compatible HTTP API as the remote engine speaks it: where to send what, how a
streamed reply reads, and what each failure of the inference server means."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from generation.errors import EngineBusy, GenerationError
from generation.sampling import SamplingParams

# How a request to the inference server failed, as counted in /metrics.
FailureKind = Literal[
    "unreachable", "timeout", "disconnected", "server_error", "rejected", "bad_stream", "busy"
]
# The inference server's own word for "too many requests now": the user may retry.
BUSY_STATUSES = frozenset({429, 503})
# Enough of an error body to say what went wrong without filling the log.
_BODY_EXCERPT = 300


class EngineFailure(GenerationError):
    """A request to the inference server failed; `kind` says how, the message says why."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class SamplingNames:
    """What an inference server calls the sampling settings beyond OpenAI's (None: not sent)."""

    top_k: str | None = "top_k"
    repetition_penalty: str | None = "repetition_penalty"

    def sent(self) -> tuple[str, ...]:
        """The extension names this dialect sends."""
        return tuple(name for name in (self.top_k, self.repetition_penalty) if name)


# vLLM, SGLang and TGI take top_k and repetition_penalty (TGI ignores both in chat).
COMMON_NAMES = SamplingNames()
# llama.cpp's server calls the repetition penalty repeat_penalty.
LLAMA_CPP_NAMES = SamplingNames(repetition_penalty="repeat_penalty")
# For a server that refuses fields OpenAI does not define (transformers serve answers 422).
OPENAI_NAMES = SamplingNames(top_k=None, repetition_penalty=None)
# What /v1/models says owns a model, for the servers whose names differ from the common ones.
NAMES_BY_OWNER: Mapping[str, SamplingNames] = {"llamacpp": LLAMA_CPP_NAMES}


@dataclass(frozen=True)
class ServedModel:
    """The model the inference server serves, as its /v1/models lists it."""

    id: str
    owned_by: str | None = None
    max_model_len: int | None = None

    @property
    def sampling_names(self) -> SamplingNames:
        """The extension names its server understands."""
        return NAMES_BY_OWNER.get(self.owned_by or "", COMMON_NAMES)


@dataclass(frozen=True)
class Usage:
    """Token counts the server reports for one reply."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class StreamEvent:
    """One event of a streamed reply: a piece of text, the finish reason, the usage."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None

    @property
    def carries_news(self) -> bool:
        """Whether there is anything in it (role-only chunks and keep-alives have nothing)."""
        return bool(self.text or self.finish_reason or self.usage)


def sampling_fields(params: SamplingParams, names: SamplingNames) -> dict[str, Any]:
    """The request fields for `params`: OpenAI's, then the extensions `names` allows.

    Settings that change nothing (top_k 0, a penalty of 1.0, top_p and top_k when greedy)
    are left out, so a server with other defaults or stricter checks has less to refuse.
    """
    fields: dict[str, Any] = {"max_tokens": params.max_new_tokens}
    if params.greedy:
        fields["temperature"] = 0.0
    else:
        fields["temperature"] = params.temperature
        fields["top_p"] = params.top_p
        if names.top_k and params.top_k > 0:
            fields[names.top_k] = params.top_k
    if names.repetition_penalty and params.repetition_penalty != 1.0:
        fields[names.repetition_penalty] = params.repetition_penalty
    return fields


def parse_sse_line(line: str, *, chat: bool) -> StreamEvent | None:
    """The event of one server-sent-events line; an empty event for lines without data, None
    at `[DONE]`. Raises EngineFailure for an error event or a line that is not JSON."""
    if not line.startswith("data:"):
        return StreamEvent()  # blank separators, comments, `event:` lines
    data = line.removeprefix("data:").strip()
    if data == "[DONE]":
        return None
    try:
        chunk = json.loads(data)
    except ValueError:
        message = f"the engine sent a line that is not JSON: {data[:80]!r}"
        raise EngineFailure("bad_stream", message) from None
    if not isinstance(chunk, dict):
        raise EngineFailure(
            "bad_stream", f"the engine sent a chunk that is not an object: {data[:80]!r}"
        )
    if "error" in chunk or chunk.get("object") == "error":
        raise EngineFailure("server_error", f"the engine failed mid-reply: {_error_text(chunk)}")
    return StreamEvent(*_choice_fields(chunk, chat=chat), usage=_usage(chunk.get("usage")))


def failure_of_response(response: httpx.Response, body: str) -> GenerationError:
    """What an HTTP error status from the server means: EngineBusy for 429 and 503 (the user
    may retry), otherwise an EngineFailure."""
    excerpt = " ".join(body.split())[:_BODY_EXCERPT]
    status = response.status_code
    if status in BUSY_STATUSES:
        retry_after = response.headers.get("retry-after", "")
        return EngineBusy(
            f"the inference engine is busy (HTTP {status}: {excerpt})",
            int(retry_after) if retry_after.isdigit() else None,
        )
    if status in (401, 403):
        return EngineFailure(
            "rejected",
            f"the engine refused wxgpt's credentials (HTTP {status}; check "
            f"WXGPT_INFERENCE_API_KEY): {excerpt}",
        )
    kind: FailureKind = "server_error" if status >= 500 else "rejected"
    return EngineFailure(kind, f"the engine answered HTTP {status}: {excerpt}")


def failure_of_transport(exc: httpx.TransportError, *, connected: bool) -> EngineFailure:
    """What a broken connection means: unreachable before the response began, a disconnect
    after."""
    cause = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) or not connected:
        return EngineFailure("unreachable", f"the inference engine is unreachable: {cause}")
    return EngineFailure("disconnected", f"the inference engine broke off the reply: {cause}")


def refused_names(body: str, names: SamplingNames) -> bool:
    """Whether a 400/422 body says the server refuses the extension fields we sent."""
    return any(name in body for name in names.sent())


def _choice_fields(chunk: dict[str, Any], *, chat: bool) -> tuple[str, str | None]:
    choices = chunk.get("choices") or []
    if not choices:
        return "", None  # a usage-only chunk
    choice = choices[0]
    text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
    return str(text or ""), choice.get("finish_reason")


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt, completion)


def _error_text(chunk: dict[str, Any]) -> str:
    error = chunk.get("error", chunk)
    if isinstance(error, dict):
        return str(error.get("message") or error)[:_BODY_EXCERPT]
    return str(error)[:_BODY_EXCERPT]


class ServerAddress:
    """Where an OpenAI-compatible server is: its API base (`…/v1`), its root (for /health),
    its origin (safe to show: no credentials), and the headers every request carries."""

    def __init__(self, url: str, api_key: str | None) -> None:
        self.base = url.rstrip("/")
        self.root = self.base.removesuffix("/v1")
        parsed = httpx.URL(self.base)
        port = f":{parsed.port}" if parsed.port else ""
        self.origin = f"{parsed.scheme}://{parsed.host}{port}"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}


def pick_model(listing: Any, configured: str | None) -> ServedModel:
    """The model to ask for, from a /v1/models body: the configured one, else the only one
    listed. Raises EngineFailure when that cannot be told."""
    models = [_served(entry) for entry in _entries(listing)]
    if configured is not None:
        # An engine may list an alias only (llama.cpp answers for any name): trust the setting.
        return next((m for m in models if m.id == configured), ServedModel(configured))
    if len(models) == 1:
        return models[0]
    if not models:
        raise EngineFailure("rejected", "the inference engine lists no model at /v1/models")
    names = ", ".join(m.id for m in models[:10])
    raise EngineFailure(
        "rejected",
        f"the inference engine serves several models ({names}); "
        "set WXGPT_INFERENCE_MODEL to the one wxgpt should use",
    )


def _entries(listing: Any) -> list[dict[str, Any]]:
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        raise EngineFailure("bad_stream", "the engine's /v1/models answer has no model list")
    return [entry for entry in data if isinstance(entry, dict) and isinstance(entry.get("id"), str)]


def _served(entry: dict[str, Any]) -> ServedModel:
    owner = entry.get("owned_by")
    meta = entry.get("meta")
    # vLLM reports the context it was started with (--max-model-len); llama.cpp what one
    # slot holds (-c divided among the -np slots), in its own `meta`.
    length = entry.get("max_model_len")
    if length is None and isinstance(meta, dict):
        length = meta.get("n_ctx")
    return ServedModel(
        id=entry["id"],
        owned_by=owner if isinstance(owner, str) else None,
        max_model_len=length if isinstance(length, int) and length > 0 else None,
    )

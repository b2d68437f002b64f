"""Load the chat model and its tokenizer once, from a folder, the local hub cache or the default."""

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import try_to_load_from_cache
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

from generation.default_model import (
    DEFAULT_MODEL_NAME,
    default_cache_dir,
    ensure_default_model,
    gguf_path,
)
from generation.errors import ModelNotFound
from generation.prompts import PromptFormat, context_size_of, make_format

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to generate, with everything needed to prompt it."""

    name: str
    model: Any
    tokenizer: PreTrainedTokenizerBase
    prompt_format: PromptFormat
    context_size: int
    device: str


@dataclass(frozen=True)
class ModelSpec:
    """What to load: `source` is a folder or hub id; None means the bundled default."""

    source: str | None = None
    allow_download: bool = False
    cache_dir: Path | None = None
    prompt_format: str = "auto"
    device: str = "auto"
    dtype: str = "auto"


def check_available(spec: ModelSpec) -> None:
    """Fail fast, before the server starts, when the model cannot be found; raises ModelNotFound."""
    if spec.source is None:
        gguf_path()
        return
    path, _ = _resolve(spec)
    if spec.allow_download or Path(path).is_dir():
        return
    if not isinstance(try_to_load_from_cache(path, "config.json"), str):
        raise ModelNotFound(_missing_message(spec, path))


def load_model(spec: ModelSpec) -> LoadedModel:
    """Load model and tokenizer (blocking; call from a worker thread)."""
    started = time.perf_counter()
    path, name = _resolve(spec)
    device = _pick_device(spec.device)
    dtype = _pick_dtype(spec.dtype, device)
    local_only = not spec.allow_download
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_only)
        model: Any = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=local_only, dtype=dtype
        )
    except OSError as exc:
        raise ModelNotFound(_missing_message(spec, path, str(exc))) from exc
    model.to(device)
    model.eval()
    prompt_format = make_format(tokenizer, spec.prompt_format)
    loaded = LoadedModel(
        name=name,
        model=model,
        tokenizer=tokenizer,
        prompt_format=prompt_format,
        context_size=context_size_of(model.config, tokenizer),
        device=device,
    )
    logger.info(
        "loaded model %s (%s, %s prompts, context %d tokens, %s, %s) in %.1f s",
        name,
        type(model).__name__,
        prompt_format.name,
        loaded.context_size,
        device,
        str(dtype).removeprefix("torch."),
        time.perf_counter() - started,
    )
    return loaded


@dataclass(frozen=True)
class LoadedTokenizer:
    """What prompting a model needs, without its weights (for an engine that runs elsewhere)."""

    name: str
    tokenizer: PreTrainedTokenizerBase
    prompt_format: PromptFormat
    context_size: int


def load_tokenizer(spec: ModelSpec) -> LoadedTokenizer:
    """Load the model's tokenizer and config, never its weights (blocking)."""
    path, name = _resolve(spec)
    local_only = not spec.allow_download
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_only)
        config = AutoConfig.from_pretrained(path, local_files_only=local_only)
    except OSError as exc:
        raise ModelNotFound(_missing_message(spec, path, str(exc))) from exc
    prompt_format = make_format(tokenizer, spec.prompt_format)
    return LoadedTokenizer(name, tokenizer, prompt_format, context_size_of(config, tokenizer))


def _resolve(spec: ModelSpec) -> tuple[str, str]:
    if spec.source is None:
        return str(ensure_default_model(spec.cache_dir or default_cache_dir())), DEFAULT_MODEL_NAME
    source = Path(spec.source).expanduser()
    if source.is_dir():
        if not (source / "config.json").is_file():
            raise ModelNotFound(f"model folder {source} has no config.json")
        return str(source), source.name
    if source.is_absolute() or spec.source.startswith((".", "~")) or spec.source.count("/") > 1:
        raise ModelNotFound(f"model folder {source} does not exist")
    return spec.source, spec.source


def _missing_message(spec: ModelSpec, path: str, cause: str = "") -> str:
    if spec.allow_download or Path(path).is_dir():
        return f"could not load model {path}: {cause}"
    return (
        f"model {path!r} is not a local folder and is not in the local Hugging Face cache; "
        "downloads are off (set WXGPT_ALLOW_DOWNLOAD=1 to fetch it from the hub, "
        "or point WXGPT_MODEL at a folder with config.json and the tokenizer files)"
    )


def _pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _pick_dtype(name: str, device: str) -> torch.dtype:
    if name == "auto":
        # float32 on CPU: bfloat16 is only slightly faster there and not every CPU has it.
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(
            f"unknown dtype {name!r}; choose one of auto, {', '.join(DTYPES)}"
        ) from None

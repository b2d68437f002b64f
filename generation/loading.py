"""Load the chat model and its tokenizer once, from a folder, the local hub cache or the default."""

import functools
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
    BUNDLED_MODELS,
    DEFAULT_MODEL,
    BundledModel,
    FindPackage,
    check_installed,
    default_cache_dir,
    ensure_converted,
    ensure_gguf,
    installed_package_dir,
    is_converted,
)
from generation.errors import ModelNotFound
from generation.model_spec import ModelSpec
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


def check_available(spec: ModelSpec, *, find_package: FindPackage = installed_package_dir) -> None:
    """Fail fast, before the server starts, when the model cannot be found; raises ModelNotFound."""
    bundled = _bundled(spec)
    if bundled is not None:
        check_installed(bundled, _cache_dir(spec), find_package)
        return
    if _gguf_source(spec) is not None:
        return
    path, _ = _resolve(spec)
    if spec.allow_download or Path(path).is_dir():
        return
    if not isinstance(try_to_load_from_cache(path, "config.json"), str):
        raise ModelNotFound(_missing_message(spec, path))


def prepare_model(spec: ModelSpec, *, find_package: FindPackage = installed_package_dir) -> None:
    """Before the server starts: join and check a bundled model's GGUF if it is not converted
    yet (a few seconds, once), so that a damaged download stops the start with a message
    (GgufChecksumMismatch) instead of failing later in the background. Others: nothing to do."""
    bundled = _bundled(spec)
    if bundled is not None and not is_converted(bundled, _cache_dir(spec)):
        ensure_gguf(bundled, _cache_dir(spec), find_package)


def load_model(
    spec: ModelSpec, *, find_package: FindPackage = installed_package_dir
) -> LoadedModel:
    """Load model and tokenizer (blocking; call from a worker thread). A bundled model is
    converted into the cache first if it is not there yet (about a minute, once)."""
    started = time.perf_counter()
    path, name = _resolve(spec, find_package)
    device = _pick_device(spec.device)
    dtype = pick_dtype(spec.dtype, device)
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


def load_tokenizer(
    spec: ModelSpec, *, find_package: FindPackage = installed_package_dir
) -> LoadedTokenizer:
    """Load the model's tokenizer and config, never its weights (blocking).

    A GGUF file (`source` ending in .gguf) gives them from its own metadata, so an engine
    serving that file fits prompts with exactly its tokenizer; so does a bundled model not
    converted yet, whose weights are then never converted."""
    path, gguf_file, name = _tokenizer_source(spec, find_package)
    local_only = not spec.allow_download
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path, gguf_file=gguf_file, local_files_only=local_only
        )
        config = AutoConfig.from_pretrained(path, gguf_file=gguf_file, local_files_only=local_only)
    except OSError as exc:
        raise ModelNotFound(_missing_message(spec, path, str(exc))) from exc
    prompt_format = make_format(tokenizer, spec.prompt_format)
    return LoadedTokenizer(name, tokenizer, prompt_format, context_size_of(config, tokenizer))


def _tokenizer_source(spec: ModelSpec, find_package: FindPackage) -> tuple[str, str | None, str]:
    """(folder, GGUF file in it or None, display name) to read a tokenizer from."""
    bundled = _bundled(spec)
    if bundled is not None and not is_converted(bundled, _cache_dir(spec)):
        joined = ensure_gguf(bundled, _cache_dir(spec), find_package)
        return str(joined.parent), joined.name, bundled.title
    gguf = _gguf_source(spec)
    if gguf is not None:
        return str(gguf.parent), gguf.name, gguf.name
    path, name = _resolve(spec, find_package)
    return path, None, name


def _gguf_source(spec: ModelSpec) -> Path | None:
    """The GGUF file `source` names, if it names one; ModelNotFound if it is not there."""
    if spec.source is None or not spec.source.endswith(".gguf"):
        return None
    path = Path(spec.source).expanduser()
    if not path.is_file():
        raise ModelNotFound(f"GGUF file {path} does not exist")
    return path


def _bundled(spec: ModelSpec) -> BundledModel | None:
    if spec.source is None:
        return BUNDLED_MODELS[DEFAULT_MODEL]
    return BUNDLED_MODELS.get(spec.source)


def _cache_dir(spec: ModelSpec) -> Path:
    return spec.cache_dir or default_cache_dir()


def _resolve(spec: ModelSpec, find_package: FindPackage = installed_package_dir) -> tuple[str, str]:
    bundled = _bundled(spec)
    if bundled is not None:
        return str(ensure_converted(bundled, _cache_dir(spec), find_package)), bundled.title
    assert spec.source is not None
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


def pick_dtype(name: str, device: str, *, cpu_bf16: bool | None = None) -> torch.dtype:
    """`auto`: bfloat16 on a GPU, and on a CPU that computes bfloat16 in hardware (faster there:
    SmolLM2 generated 24.3 tokens/s against 18.8 in float32, Qwen2.5-Coder-0.5B 4.9 against
    2.4); float32 on other CPUs, where bfloat16 is emulated and slow. `cpu_bf16` overrides the
    CPU detection."""
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16
        native = cpu_has_native_bf16() if cpu_bf16 is None else cpu_bf16
        return torch.bfloat16 if native and device.startswith("cpu") else torch.float32
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(
            f"unknown dtype {name!r}; choose one of auto, {', '.join(DTYPES)}"
        ) from None


# x86 instructions that compute in bfloat16 (Cooper Lake, Sapphire Rapids, AMD Zen 4 on).
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The CPU flags that /proc/cpuinfo text lists, over all its cores."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return frozenset(flags)


def cpu_flags_have_bf16(cpuinfo: str) -> bool:
    """Whether /proc/cpuinfo text lists a bfloat16 instruction set among its CPU flags."""
    return bool(BF16_CPU_FLAGS & cpu_flags(cpuinfo))


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this machine's CPU computes bfloat16 in hardware: torch's own check (AVX512-BF16
    or AMX) where this torch has it, else the flags in /proc/cpuinfo."""
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        probe = getattr(torch.cpu, check, None)
        if probe is not None and probe():
            return True
    try:
        return cpu_flags_have_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False

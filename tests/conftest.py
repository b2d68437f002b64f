from collections.abc import Iterator
from pathlib import Path

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from generation.loading import LoadedModel, load_model
from generation.model_spec import ModelSpec
from tests.generation.tokenizers import build_chat_template_tokenizer
from tests.inference_engine import ServeProcess
from tests.tiny_model import build_tiny_gpt2
from tests.wechatpay_server import WeChatPayStandIn


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 saved with save_pretrained, shared by the whole run."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GPT-2 with a ChatML template and an 8192-token context."""
    return build_tiny_gpt2(
        tmp_path_factory.mktemp("tiny-chat"),
        n_positions=8192,
        tokenizer_builder=build_chat_template_tokenizer,
    )


@pytest.fixture(scope="session")
def served_chat_model(
    chat_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """`transformers serve` with the chat model on a loopback port, for the whole run."""
    engine = ServeProcess(chat_model, tmp_path_factory.mktemp("serve-chat") / "serve.log").start()
    yield engine
    engine.kill()


@pytest.fixture
def held_engine(served_chat_model: ServeProcess) -> Iterator[ServeProcess]:
    """The shared `transformers serve`, its gate closed for this test and opened after it."""
    served_chat_model.gate.allow_more(0)
    yield served_chat_model
    served_chat_model.gate.open()


@pytest.fixture(scope="session")
def loaded_tiny(tiny_model: Path) -> LoadedModel:
    """The tiny GPT-2 loaded through wxgpt's own loading code."""
    return load_model(ModelSpec(source=str(tiny_model)))


@pytest.fixture(autouse=True)
def _forget_compiled_sql() -> Iterator[None]:
    """Tortoise caches INSERT/DELETE SQL per connection name, not per dialect, for the whole
    process; the tests switch "default" between SQLite and PostgreSQL, so start clean."""
    EXECUTOR_CACHE.clear()
    yield
    EXECUTOR_CACHE.clear()


@pytest.fixture
def wechatpay(tmp_path: Path) -> Iterator[WeChatPayStandIn]:
    """A stand-in for WeChat Pay on loopback, with keys made for this test."""
    standin = WeChatPayStandIn(tmp_path).start()
    yield standin
    standin.stop()

import pytest
from transformers import PreTrainedTokenizerBase

from tests.generation.tokenizers import (
    build_bert_chitchat_tokenizer,
    build_bpe_tokenizer,
    build_chat_template_tokenizer,
)


@pytest.fixture(scope="module")
def bpe(tmp_path_factory: pytest.TempPathFactory) -> PreTrainedTokenizerBase:
    """Byte-level BPE without a chat template: the GPT-2 / DialoGPT case."""
    return build_bpe_tokenizer(tmp_path_factory.mktemp("bpe"))


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> PreTrainedTokenizerBase:
    """Byte-level BPE with a ChatML chat template."""
    return build_chat_template_tokenizer(tmp_path_factory.mktemp("chat"))


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> PreTrainedTokenizerBase:
    """A BERT vocab, as GPT2-chitchat models use."""
    return build_bert_chitchat_tokenizer(tmp_path_factory.mktemp("bert"))

"""Real tokenizers built by the tests: trained or written here, saved, reloaded from disk."""

import json
import random
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, BertTokenizer, PreTrainedTokenizerFast

ENGLISH_WORDS = (
    *("the", "cat", "sat", "on", "mat", "hello", "world", "how", "are", "you", "today"),
    *("I", "am", "fine", "thanks", "what", "did", "do", "tell", "me", "a", "long", "story"),
    *("about", "dog", "and", "bird", "it", "is", "sunny"),
)
CHINESE_WORDS = (
    "你好",
    "今天",
    "天气",
    "怎么样",
    "谢谢",
    "再见",
    "世界",
    "我很好",
    "朋友",
    "吃饭了吗",
)
EMOJI = ("🙂", "😀", "🎉", "👍", "❤️")
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# GPT2-chitchat's vocab is bert-base-chinese: specials first, then single characters,
# latin words and ## continuations.
BERT_VOCAB = [
    *["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    *"你好吗我很今天气怎么样的是不了谢再见世界，。！？",
    *["!", ",", ".", "?", "(", ")", "[", "]", "'", "3", "14", "1", "000"],
    *["hello", "world", "the", "cat", "play", "ok", "it", "s", "sep", "he"],
    *["##ing", "##s", "##lo", "##ed"],
]


def build_bpe_tokenizer(directory: Path) -> PreTrainedTokenizerFast:
    """A GPT-2-style byte-level BPE with eos <|endoftext|> and no chat template (DialoGPT)."""
    backend = _train_byte_level_bpe(["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    return _save_and_reload(tokenizer, directory)


def build_chat_template_tokenizer(
    directory: Path, *, eos_token: str = "<|im_end|>"
) -> PreTrainedTokenizerFast:
    """The same byte-level BPE with a ChatML template and <|im_start|>/<|im_end|> tokens."""
    control = ["<|im_start|>", "<|im_end|>"]
    backend = _train_byte_level_bpe(["<|endoftext|>", *control])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=eos_token, extra_special_tokens=control
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return _save_and_reload(tokenizer, directory)


def build_bert_chitchat_tokenizer(directory: Path) -> PreTrainedTokenizerFast:
    """A BERT WordPiece tokenizer from a small vocab.txt, as GPT2-chitchat ships it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n", encoding="utf-8")
    # BertTokenizer(vocab_file=...) ignores the file in transformers 5; from_pretrained
    # reads it, as it does for a GPT2-chitchat model folder.
    tokenizer = BertTokenizer.from_pretrained(directory)
    return _save_and_reload(tokenizer, directory)


def build_sentencepiece_style_tokenizer(directory: Path) -> PreTrainedTokenizerFast:
    """A Llama-2-style BPE: "▁" marks a leading space, unknown characters fall back to bytes."""
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False
    )
    backend.train_from_iterator(_corpus(with_chinese=False), trainer)
    # The trainer knows nothing of byte fallback: add the <0xNN> tokens and switch it on.
    spec = json.loads(backend.to_str())
    vocab = spec["model"]["vocab"]
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    spec["model"]["byte_fallback"] = True
    spec["model"]["unk_token"] = None
    backend = Tokenizer.from_str(json.dumps(spec))
    backend.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    return _save_and_reload(tokenizer, directory)


def _train_byte_level_bpe(special_tokens: list[str]) -> Tokenizer:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        # Small enough that rarer Chinese characters and emoji stay split into byte tokens.
        vocab_size=500,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_corpus(with_chinese=True), trainer)
    return backend


def _corpus(*, with_chinese: bool) -> list[str]:
    rng = random.Random(0)
    lines = []
    for _ in range(300):
        line = " ".join(rng.choices(ENGLISH_WORDS, k=8))
        if with_chinese:
            line += " " + "".join(rng.choices(CHINESE_WORDS, k=3)) + rng.choice(EMOJI)
        lines.append(line)
    return lines


def _save_and_reload(
    tokenizer: PreTrainedTokenizerFast, directory: Path
) -> PreTrainedTokenizerFast:
    tokenizer.save_pretrained(directory)
    reloaded: PreTrainedTokenizerFast = AutoTokenizer.from_pretrained(directory)
    return reloaded

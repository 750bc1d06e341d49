"""Tokenizers with Molmo's special tokens.

`MolmoTokenizer` wraps a `tokenizers.Tokenizer` (a released checkpoint's `tokenizer.json`, or one trained
here with `train_bpe_tokenizer`). The image special tokens' ids are read from the tokenizer file or a config's
`special_token_ids`, never hard-coded. Qwen2 / OLMo tokenizers have no BOS: EOS serves as BOS.
`CharTokenizer` is the conformance fixtures' stand-in (id = 100 + ord(c)).

    tok = MolmoTokenizer.from_dir("Molmo-7B-D-0924")
    ids = tok.encode(format_prompt("Describe this image."))   # format_prompt: molmo.text.prompts
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from molmo.text.special_tokens import EOS_CANDIDATES, EOS_TOKEN, IMAGE_TOKEN_NAMES, ImageTokenIds


class MolmoTokenizer:
    def __init__(self, tokenizer: Tokenizer, eos_token_id: int, image_token_ids: ImageTokenIds,
                 bos_token_id: int | None = None):
        self.tokenizer = tokenizer
        self.eos_token_id = eos_token_id
        self.bos_token_id = eos_token_id if bos_token_id is None else bos_token_id
        self.image_token_ids = image_token_ids

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    @property
    def special_ids(self) -> set[int]:
        return self.image_token_ids.all() | {self.eos_token_id}

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        special = self.special_ids
        return self.tokenizer.decode([i for i in ids if i not in special and i >= 0], skip_special_tokens=False)

    @staticmethod
    def from_file(path: str | Path, special_token_ids: dict[str, int] | None = None,
                  eos_token_id: int | None = None) -> "MolmoTokenizer":
        tok = Tokenizer.from_file(str(path))
        vocab = tok.get_vocab(with_added_tokens=True)
        ids = dict(special_token_ids or {})
        for name in IMAGE_TOKEN_NAMES:
            if name not in ids and name in vocab:
                ids[name] = vocab[name]
        missing = [n for n in IMAGE_TOKEN_NAMES if n not in ids]
        if missing:
            raise ValueError(f"{path}: tokenizer lacks Molmo image tokens {missing} and none were given "
                             f"(pass special_token_ids from the model config)")
        if eos_token_id is None:
            eos_token_id = next((vocab[c] for c in EOS_CANDIDATES if c in vocab), None)
            if eos_token_id is None:
                raise ValueError(f"{path}: cannot find an EOS token (tried {EOS_CANDIDATES}); pass eos_token_id")
        return MolmoTokenizer(tok, eos_token_id, ImageTokenIds.from_mapping(ids))

    @staticmethod
    def from_dir(path: str | Path) -> "MolmoTokenizer":
        """A checkpoint folder: tokenizer.json, with ids from config.json's special_token_ids / eos when given."""
        path = Path(path)
        if not (path / "tokenizer.json").is_file():
            raise FileNotFoundError(f"{path}: no tokenizer.json")
        special, eos = None, None
        if (path / "config.json").is_file():
            cfg = json.loads((path / "config.json").read_text())
            special, eos = cfg.get("special_token_ids"), cfg.get("eos_token_id")
            if isinstance(eos, list):
                eos = eos[0]
        return MolmoTokenizer.from_file(path / "tokenizer.json", special, eos)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(path / "tokenizer.json"))
        return path / "tokenizer.json"


class CharTokenizer(MolmoTokenizer):
    """The conformance fixtures' character tokenizer: ASCII char c -> 100 + ord(c); specials after the
    embedding rows (embedding_size + 0..4)."""

    def __init__(self, embedding_size: int, eos_token_id: int):
        ids = ImageTokenIds.after_vocabulary(embedding_size)
        self.eos_token_id = self.bos_token_id = eos_token_id
        self.image_token_ids = ids
        self.embedding_size = embedding_size

    @property
    def vocab_size(self) -> int:
        return self.embedding_size

    def encode(self, text: str) -> list[int]:
        bad = sorted({c for c in text if ord(c) > 127})
        if bad:
            raise ValueError(f"CharTokenizer handles ASCII only; got {bad[:5]}")
        return [100 + ord(c) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(chr(i - 100) for i in ids if 100 <= i < 228)

    def save(self, path):  # pragma: no cover - the stand-in has no file form
        raise NotImplementedError("CharTokenizer is a test stand-in and cannot be saved")


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 2048, min_frequency: int = 2) -> MolmoTokenizer:
    """Byte-level BPE on the given texts, with `<|endoftext|>` and the five image tokens as added tokens
    (placed right after the learned vocabulary, so they map to the model's new embedding rows)."""
    tok = Tokenizer(models.BPE())
    # Digits are split one by one so numbers (coordinates, counts, times) are composed digit by digit,
    # which a small model learns far more easily than thousands of whole-number tokens. A space stays with
    # the digit after it (" 3" is one token), so in an answer such as "red 3" the number is predicted right
    # at the word it belongs to: with a lone space token in between, the tiny decoder binds far worse
    # (measured in docs/tiny-molmo-research.md).
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r" ?\d"), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=[EOS_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    tok.add_special_tokens(list(IMAGE_TOKEN_NAMES))
    vocab = tok.get_vocab(with_added_tokens=True)
    return MolmoTokenizer(tok, vocab[EOS_TOKEN], ImageTokenIds.from_mapping(vocab))

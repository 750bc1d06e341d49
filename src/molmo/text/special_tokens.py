"""Molmo's image special tokens: their names (as written in a tokenizer file or a config's
`special_token_ids`) and their ids for one tokenizer/model. Every module that needs them reads them here.

    ids = ImageTokenIds.from_mapping(config["special_token_ids"])
    ids.to_mapping()   # {"<im_start>": ..., "<im_end>": ..., "<im_patch>": ..., "<im_col>": ..., "<|image|>": ...}
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

# In this order they follow a model's text vocabulary (embedding_size + 0..4) when a model adds them itself.
IMAGE_TOKEN_NAMES = ("<im_start>", "<im_end>", "<im_patch>", "<im_col>", "<|image|>")
EOS_TOKEN = "<|endoftext|>"  # the tokenizers trained here; released ones are found among EOS_CANDIDATES
EOS_CANDIDATES = (EOS_TOKEN, "<|end_of_text|>", "</s>", "<eos>")


@dataclass(frozen=True)
class ImageTokenIds:
    """Ids of the five image tokens, in IMAGE_TOKEN_NAMES order."""

    start: int  # <im_start>: opens an image block
    end: int  # <im_end>: closes it
    patch: int  # <im_patch>: receives one pooled image feature
    col: int  # <im_col>: ends a row of patches
    image: int  # <|image|>: where a training conversation puts the image block

    @staticmethod
    def from_mapping(ids: dict[str, int]) -> "ImageTokenIds":
        missing = [n for n in IMAGE_TOKEN_NAMES if n not in ids]
        if missing:
            raise ValueError(f"special token ids are missing {missing}")
        return ImageTokenIds(*(int(ids[name]) for name in IMAGE_TOKEN_NAMES))

    @staticmethod
    def after_vocabulary(embedding_size: int) -> "ImageTokenIds":
        """The ids a model that adds the tokens itself gives them: right after its text embedding rows."""
        return ImageTokenIds(*(embedding_size + i for i in range(len(IMAGE_TOKEN_NAMES))))

    def to_mapping(self) -> dict[str, int]:
        return dict(zip(IMAGE_TOKEN_NAMES, astuple(self)))

    def all(self) -> set[int]:
        return set(astuple(self))

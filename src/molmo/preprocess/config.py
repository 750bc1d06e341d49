"""Image pre-processing settings (the released `preprocessor_config.json` plus the official code's
options), as a small frozen dataclass with named presets.

    cfg = PreprocessorConfig.released()             # 336 px crops, 14 px patches, 12x12 tokens, margins 4/4
    cfg = PreprocessorConfig.from_json("Molmo-7B-D-0924/preprocessor_config.json")
    cfg = dataclasses.replace(cfg, max_crops=36)    # high-resolution evaluation
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("molmo", "siglip", "dino", "metaclip")


@dataclass(frozen=True)
class PreprocessorConfig:
    base_image_input_size: tuple[int, int] = (336, 336)  # crop size in pixels (h, w)
    patch_size: int = 14
    pool_h: int = 2
    pool_w: int = 2
    max_crops: int = 12  # high-res crop budget (any integer; 36 for high-resolution evaluation)
    overlap_margins: tuple[int, int] = (4, 4)  # patches shared with neighbouring crops (left/top, right/bottom)
    image_padding_mask: bool = True
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    # molmo: letter-box + bilinear/antialias (released); siglip: stretch, bilinear, [-1, 1];
    # dino: stretch, bicubic/antialias, ImageNet stats; metaclip: stretch, bicubic/antialias, CLIP stats.
    resize: str = "molmo"
    # False reproduces the released off-by-one image_masks (rows shifted by one crop, last row -1).
    fix_image_padding: bool = False
    use_col_tokens: bool = True

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {self.resize!r}; choose from {RESIZE_MODES}")
        if self.max_crops < 1:
            raise ValueError(f"max_crops must be >= 1, got {self.max_crops}")
        h, w = self.base_image_input_size
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"crop size {self.base_image_input_size} is not a multiple of patch {self.patch_size}")
        if sum(self.overlap_margins) >= self.patch_grid[0]:
            raise ValueError(f"overlap margins {self.overlap_margins} leave no window in a {self.patch_grid} grid")

    @property
    def patch_grid(self) -> tuple[int, int]:
        return self.base_image_input_size[0] // self.patch_size, self.base_image_input_size[1] // self.patch_size

    @property
    def tokens_grid(self) -> tuple[int, int]:
        """Pooled tokens per crop side (image_token_length_h/w)."""
        gh, gw = self.patch_grid
        return -(-gh // self.pool_h), -(-gw // self.pool_w)

    @property
    def tokens_per_crop(self) -> int:
        th, tw = self.tokens_grid
        return th * tw

    @property
    def patch_dim(self) -> int:
        return 3 * self.patch_size * self.patch_size

    def replace(self, **kw: Any) -> "PreprocessorConfig":
        return dataclasses.replace(self, **kw)

    @staticmethod
    def released() -> "PreprocessorConfig":
        return PreprocessorConfig()

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "PreprocessorConfig":
        fields = {f.name for f in dataclasses.fields(PreprocessorConfig)}
        kw: dict[str, Any] = {}
        for key, value in d.items():
            if key == "image_patch_size":
                kw["patch_size"] = value
            elif key in ("base_image_input_size", "overlap_margins", "image_mean", "image_std"):
                kw[key] = tuple(value)
            elif key in fields:
                kw[key] = value
        size = kw.get("base_image_input_size", (336, 336))
        patch = kw.get("patch_size", 14)
        # The released file states the pooled token grid; check it agrees with 2x2 pooling of the patches.
        for key, side in (("image_token_length_h", 0), ("image_token_length_w", 1)):
            if key in d and d[key] != -(-(size[side] // patch) // 2):
                raise ValueError(f"{key}={d[key]} does not match 2x2 pooling of {size} px / {patch} px patches")
        return PreprocessorConfig(**kw)

    @staticmethod
    def from_json(path: str | Path) -> "PreprocessorConfig":
        return PreprocessorConfig.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        th, tw = self.tokens_grid
        d.update(image_patch_size=self.patch_size, image_token_length_h=th, image_token_length_w=tw)
        del d["patch_size"]
        return d

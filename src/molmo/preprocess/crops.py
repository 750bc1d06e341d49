"""Image -> crops: the letter-box resize, the low-resolution global view, tiling selection for a crop
budget, overlapping high-resolution crops, patchify and per-patch padding masks (arch-spec §1.2–1.7).

    crops = make_crops(image_uint8, PreprocessorConfig.released())
    crops.images  # [1 + rows*cols, 576, 588] float32, crop 0 = global view
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from molmo.preprocess.config import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, PreprocessorConfig


@dataclass(frozen=True)
class Crops:
    images: np.ndarray  # [N, P, 3*p*p] float32, crop 0 = global view
    image_masks: np.ndarray  # [N, P] float32 (released quirk unless fix_image_padding)
    tiling: tuple[int, int]  # (rows, cols) of high-resolution crops
    kept: list[tuple[int, int, int, int]]  # per high-res crop: first kept pooled row, rows, first col, cols


def _resize(image: torch.Tensor, size: tuple[int, int], mode: str, antialias: bool) -> torch.Tensor:
    """[H, W, 3] float in [0, 1] -> [h, w, 3] (half-pixel centres, clipped to [0, 1])."""
    x = image.permute(2, 0, 1)[None]
    x = F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=antialias)
    return x[0].permute(1, 2, 0).clamp(0, 1)


def resize_and_pad(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Letter-box: scale to fit (float32 arithmetic, truncation), bilinear + antialias, pad black centred.
    Returns the float image in [0, 1] and the boolean mask of real pixels."""
    th, tw = size
    h, w = image.shape[:2]
    scale = min(np.float32(th) / np.float32(h), np.float32(tw) / np.float32(w))
    nh, nw = int(np.float32(h) * scale), int(np.float32(w) * scale)
    nh, nw = max(nh, 1), max(nw, 1)
    x = torch.from_numpy(np.array(image, dtype=np.float32)) / 255.0
    x = _resize(x, (nh, nw), "bilinear", antialias=True).numpy()
    top, left = (th - nh) // 2, (tw - nw) // 2
    out = np.zeros((th, tw, 3), np.float32)
    out[top:top + nh, left:left + nw] = x
    mask = np.zeros((th, tw), bool)
    mask[top:top + nh, left:left + nw] = True
    return out, mask


def resize_stretch(image: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """SigLIP (bilinear, no antialias) / DINOv2 and MetaCLIP (bicubic + antialias): no letter-box."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)) / 255.0
    if mode == "siglip":
        return _resize(x, size, "bilinear", antialias=False).numpy()
    return _resize(x, size, "bicubic", antialias=True).numpy()


def normalize(x: np.ndarray, cfg: PreprocessorConfig) -> np.ndarray:
    if cfg.resize == "siglip":
        return (x - 0.5) / 0.5
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if cfg.resize == "dino" else (cfg.image_mean, cfg.image_std)
    if cfg.resize == "metaclip":
        mean, std = CLIP_MEAN, CLIP_STD
    return ((x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)


def select_tiling(h: float, w: float, window: int, max_crops: int) -> tuple[int, int]:
    """Crop grid (rows, cols) for an image of (margin-reduced) size h x w, as the released code chooses it:
    candidates sorted by (#crops, rows); least up-scaling, or least down-scaling if all must shrink."""
    tilings = sorted(((i, j) for i in range(1, max_crops + 1) for j in range(1, max_crops + 1) if i * j <= max_crops),
                     key=lambda t: (t[0] * t[1], t[0]))
    cand = np.array(tilings, np.int32) * window
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (cand.astype(np.float32) / np.array([h, w], np.float32)).min(axis=-1)
    if np.all(scale < 1):
        ix = int(np.argmax(scale))
    else:
        ix = int(np.argmin(np.where(scale < 1.0, np.float32(1e10), scale)))
    return tilings[ix]


def patchify(crop: np.ndarray, patch: int) -> np.ndarray:
    """[S, S, C] -> [(S/p)^2, p*p*C], patches row-major, each in (dy, dx, channel) order."""
    h, w = crop.shape[:2]
    c = crop.shape[2] if crop.ndim == 3 else 1
    x = crop.reshape(h // patch, patch, w // patch, patch, c).transpose(0, 2, 1, 3, 4)
    return x.reshape((h // patch) * (w // patch), patch * patch * c)


def make_crops(image: np.ndarray, cfg: PreprocessorConfig, max_crops: int | None = None) -> Crops:
    """uint8 [H, W, 3] -> global view + overlapping high-res crops, per-patch masks, kept regions."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB array [H, W, 3], got {image.dtype} {image.shape}")
    max_crops = cfg.max_crops if max_crops is None else max_crops
    size = cfg.base_image_input_size
    p = cfg.patch_size
    gh, _ = cfg.patch_grid
    lm, rm = cfg.overlap_margins
    window_patches = gh - lm - rm
    window, margin = window_patches * p, (lm + rm) * p

    if cfg.resize != "molmo":
        # Other backbones: one stretched crop, no letter-box, mask all ones.
        view = normalize(resize_stretch(image, size, cfg.resize), cfg)
        patches = patchify(view, p)[None]
        masks = np.ones(patches.shape[:2], np.float32)
        th, tw = cfg.tokens_grid
        return Crops(patches, masks, (0, 0), [])

    h, w = image.shape[:2]
    rows, cols = select_tiling(h - margin, w - margin, window, max_crops)
    src, src_mask = resize_and_pad(image, (rows * window + margin, cols * window + margin))
    src = normalize(src, cfg)
    crops, masks, kept = [], [], []
    ph = cfg.pool_h
    for i in range(rows):
        crop_h = window_patches + (lm if i == 0 else 0) + (rm if i == rows - 1 else 0)
        y_first = 0 if i == 0 else lm // ph
        for j in range(cols):
            crop_w = window_patches + (lm if j == 0 else 0) + (rm if j == cols - 1 else 0)
            x_first = 0 if j == 0 else lm // cfg.pool_w
            y0, x0 = i * window, j * window
            crops.append(patchify(src[y0:y0 + size[0], x0:x0 + size[1]], p))
            m = src_mask[y0:y0 + size[0], x0:x0 + size[1]].astype(np.float32)[..., None]
            masks.append(patchify(m, p).mean(axis=1))
            kept.append((y_first, -(-crop_h // ph), x_first, -(-crop_w // cfg.pool_w)))

    global_view, global_mask = resize_and_pad(image, size)
    images = np.stack([patchify(normalize(global_view, cfg), p)] + crops).astype(np.float32)
    global_patch_mask = patchify(global_mask.astype(np.float32)[..., None], p).mean(axis=1)
    if cfg.fix_image_padding:
        image_masks = np.stack([global_patch_mask] + masks)
    else:
        # Released behaviour: high-res masks first, then a row of -1, so row k describes crop k+1.
        image_masks = np.concatenate([np.stack(masks), -np.ones((1, masks[0].shape[0]), np.float32)])
    if not cfg.image_padding_mask:
        image_masks = np.ones_like(image_masks)
    return Crops(images, image_masks.astype(np.float32), (rows, cols), kept)

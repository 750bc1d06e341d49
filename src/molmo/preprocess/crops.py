"""Image -> crops: the letter-box resize, the low-resolution global view, tiling selection for a crop
budget, overlapping high-resolution crops, patchify and per-patch padding masks (arch-spec §1.2–1.7).

The Molmo path runs at memory speed: uint8 until each channel is converted to float once, then one
antialiased bilinear resize per view and channel (Pillow's 32-bit float kernel: the same triangle filter
with half-pixel centres as torchvision's antialiased bilinear, within 6e-5 of it; single-threaded C with no
torch ops, so torch's thread setting cannot make it oversubscribe a small machine), /255 and mean/std as
one scale-and-shift, planes written into a canvas whose padding alone is filled, and each crop patchified
by one strided copy into the output array. Padding masks are computed from the letter-box rectangle.

    crops = make_crops(image_uint8, PreprocessorConfig.released())
    crops.images  # [1 + rows*cols, 576, 588] float32, crop 0 = global view
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

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


def _letterbox_rect(image_hw: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, nh, nw) of the scaled image inside the letter-box (float32 arithmetic, truncation)."""
    (th, tw), (h, w) = size, image_hw
    scale = min(np.float32(th) / np.float32(h), np.float32(tw) / np.float32(w))
    nh, nw = max(int(np.float32(h) * scale), 1), max(int(np.float32(w) * scale), 1)
    return (th - nh) // 2, (tw - nw) // 2, nh, nw


def _resize_channel(channel: np.ndarray, sizes: list[tuple[int, int]], gain: float, shift: float
                    ) -> list[np.ndarray]:
    """One uint8 channel -> normalised float32 planes at each (h, w): converted to float once, then per size
    one antialiased bilinear resize and one scale-and-shift (x * gain + shift, Pillow's linear `point`)."""
    plane = Image.frombuffer("L", channel.shape[::-1], np.ascontiguousarray(channel), "raw", "L", 0, 1)
    plane = plane.convert("F")
    return [np.asarray(plane.resize((w, h), Image.BILINEAR).point(lambda x: x * gain + shift))
            for h, w in sizes]


def _normalization(cfg: PreprocessorConfig) -> tuple[np.ndarray, np.ndarray]:
    """(gain, shift) per channel mapping uint8 values to normalised ones: x * gain + shift."""
    mean, std = np.asarray(cfg.image_mean, np.float32), np.asarray(cfg.image_std, np.float32)
    return np.float32(1 / 255) / std, -mean / std


def _resized_channels(image: np.ndarray, sizes: list[tuple[int, int]], cfg: PreprocessorConfig
                      ) -> list[list[np.ndarray]]:
    """[channel][size] normalised float32 planes. One thread: images are independent, so parallelism
    belongs to the callers' worker pools (data loader, server), where it costs no synchronisation."""
    gain, shift = _normalization(cfg)
    return [_resize_channel(image[:, :, c], sizes, float(gain[c]), float(shift[c])) for c in range(3)]


def _letterbox(planes: list[np.ndarray], rect: tuple[int, int, int, int], size: tuple[int, int],
               cfg: PreprocessorConfig) -> np.ndarray:
    """The letter-boxed view [th, tw, 3] from three normalised planes; padding = normalised black."""
    out = np.empty((*size, 3), np.float32)
    top, left, nh, nw = rect
    pad = _normalization(cfg)[1]
    out[:top], out[top + nh:], out[top:top + nh, :left], out[top:top + nh, left + nw:] = pad, pad, pad, pad
    for c, plane in enumerate(planes):
        out[top:top + nh, left:left + nw, c] = plane
    return out


def _patchify_into(dest: np.ndarray, view: np.ndarray, patch: int) -> None:
    """`patchify` written into a preallocated [P, p*p*C] array (one copy)."""
    h, w, c = view.shape
    dest.reshape(h // patch, w // patch, patch, patch, c)[:] = \
        view.reshape(h // patch, patch, w // patch, patch, c).transpose(0, 2, 1, 3, 4)


def _patch_fractions(rect: tuple[int, int, int, int], y0: int, x0: int, size: tuple[int, int], patch: int
                     ) -> np.ndarray:
    """Per patch of the window at (y0, x0): the fraction of its pixels inside the real-pixel rectangle."""
    top, left, nh, nw = rect
    rows = np.clip(np.minimum(np.arange(y0, y0 + size[0], patch) + patch, top + nh)
                   - np.maximum(np.arange(y0, y0 + size[0], patch), top), 0, patch)
    cols = np.clip(np.minimum(np.arange(x0, x0 + size[1], patch) + patch, left + nw)
                   - np.maximum(np.arange(x0, x0 + size[1], patch), left), 0, patch)
    return (np.outer(rows, cols).reshape(-1) / np.float32(patch * patch)).astype(np.float32)


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
        return Crops(patches, masks, (0, 0), [])

    h, w = image.shape[:2]
    rows, cols = select_tiling(h - margin, w - margin, window, max_crops)
    n_patches = (size[0] // p) * (size[1] // p)
    images = np.empty((1 + rows * cols, n_patches, p * p * 3), np.float32)
    big = (rows * window + margin, cols * window + margin)
    rect, global_rect = _letterbox_rect((h, w), big), _letterbox_rect((h, w), size)
    planes = _resized_channels(image, [rect[2:], global_rect[2:]], cfg)
    src = _letterbox([ch[0] for ch in planes], rect, big, cfg)
    masks, kept = [], []
    ph = cfg.pool_h
    for i in range(rows):
        crop_h = window_patches + (lm if i == 0 else 0) + (rm if i == rows - 1 else 0)
        y_first = 0 if i == 0 else lm // ph
        for j in range(cols):
            crop_w = window_patches + (lm if j == 0 else 0) + (rm if j == cols - 1 else 0)
            x_first = 0 if j == 0 else lm // cfg.pool_w
            y0, x0 = i * window, j * window
            _patchify_into(images[1 + i * cols + j], src[y0:y0 + size[0], x0:x0 + size[1]], p)
            masks.append(_patch_fractions(rect, y0, x0, size, p))
            kept.append((y_first, -(-crop_h // ph), x_first, -(-crop_w // cfg.pool_w)))

    _patchify_into(images[0], _letterbox([ch[1] for ch in planes], global_rect, size, cfg), p)
    if cfg.fix_image_padding:
        image_masks = np.stack([_patch_fractions(global_rect, 0, 0, size, p)] + masks)
    else:
        # Released behaviour: high-res masks first, then a row of -1, so row k describes crop k+1.
        image_masks = np.concatenate([np.stack(masks), -np.ones((1, n_patches), np.float32)])
    if not cfg.image_padding_mask:
        image_masks = np.ones_like(image_masks)
    return Crops(images, image_masks.astype(np.float32), (rows, cols), kept)

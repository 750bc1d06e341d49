"""Load an image as uint8 RGB [H, W, 3] from a path, bytes, file object, PIL image or array, with EXIF
orientation applied and every unusable input rejected with a message that names the problem.

Mode handling: palette, CMYK, grayscale (8/16/32-bit, float) and LA are converted to RGB; images with
alpha (RGBA, LA, PA, palette with transparency) are composited on white, because a transparent
background usually means "paper" (the reference code simply drops alpha; both agree on opaque pixels).

    img = load_image("photo.jpg")            # np.uint8 [H, W, 3]
    img = load_image(data_bytes, max_pixels=20_000_000)
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 64_000_000  # decompression-bomb guard
_PIL_GUARD = threading.Lock()  # Pillow's own bomb guard is a module global; it is set to our limit per open

ImageSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO, Image.Image, np.ndarray]


class ImageError(ValueError):
    """The input cannot be used as an image; the message says why."""


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        if img.mode == "RGB":
            return img
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        if mode == "F" and arr.max() <= 1.0:
            hi = 1.0
        arr = np.clip(arr / hi * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode in ("L", "1", "CMYK", "YCbCr", "LAB", "HSV"):
        return img.convert("RGB")
    raise ImageError(f"unsupported image mode {mode!r} (cannot be converted to RGB)")


def _from_array(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"array image must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]; got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.shape[2] == 4:
        return _from_pil(Image.fromarray(arr.astype(np.uint8), "RGBA"))
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr, 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(arr)


def _from_pil(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img) or img
    return np.asarray(_to_rgb(img), dtype=np.uint8).copy()


def load_image(src: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    if isinstance(src, np.ndarray):
        arr = _from_array(src)
        _check_size(arr.shape[1], arr.shape[0], max_pixels, "array")
        return arr
    name = "image"
    if isinstance(src, Image.Image):
        img = src
    else:
        if isinstance(src, (str, os.PathLike)):
            name = str(src)
            _check_path(Path(src), name)
            fp: BinaryIO = open(src, "rb")
        elif isinstance(src, (bytes, bytearray)):
            if len(src) == 0:
                raise ImageError("image data is empty (0 bytes)")
            fp = io.BytesIO(bytes(src))
        elif hasattr(src, "read"):
            fp = src  # type: ignore[assignment]
        else:
            raise ImageError(f"cannot load an image from a {type(src).__name__}")
        try:
            img = _open_header(fp, max_pixels)
            _check_size(img.width, img.height, max_pixels, name)  # before decoding any pixels
            img.load()
        except Image.DecompressionBombError as e:
            raise _too_many_pixels(name, max_pixels) from e
        except UnidentifiedImageError as e:
            raise ImageError(f"{name}: not a readable image file (unknown or corrupt format)") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(f"{name}: the image file is truncated or corrupt ({e})") from e
    _check_size(img.width, img.height, max_pixels, name)
    try:
        return _from_pil(img)
    except ImageError as e:
        raise ImageError(f"{name}: {e}") from e


def _open_header(fp, max_pixels: int) -> Image.Image:
    """`Image.open` (header only) with Pillow's decompression-bomb guard at our limit, so that one limit applies:
    between 1x and 2x it only warns (silenced: `_check_size` reports the exact size), above 2x it raises."""
    with _PIL_GUARD, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max_pixels
        try:
            return Image.open(fp)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def check_image_file(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse a path that cannot be an image (missing, a folder, empty, unreadable header, too many pixels)
    without decoding it: commands call this before loading a model."""
    name = str(path)
    _check_path(Path(path), name)
    try:
        with open(path, "rb") as fp:
            img = _open_header(fp, max_pixels)
            _check_size(img.width, img.height, max_pixels, name)
    except Image.DecompressionBombError as e:
        raise _too_many_pixels(name, max_pixels) from e
    except UnidentifiedImageError as e:
        raise ImageError(f"{name}: not a readable image file (unknown or corrupt format)") from e
    except OSError as e:
        raise ImageError(f"{name}: cannot read the file ({e.strerror or e})") from e


def _check_path(path: Path, name: str) -> None:
    if path.is_dir():
        raise ImageError(f"{name} is a folder, not an image file")
    if not path.is_file():
        raise ImageError(f"{name}: no such image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{name}: the file is empty (0 bytes)")


def _too_many_pixels(name: str, max_pixels: int) -> ImageError:
    # Pillow raises this (before we know the exact size) only above twice the limit it was given: ours
    return ImageError(f"{name}: image has over {2 * max_pixels:,} pixels, over the limit of {max_pixels:,} "
                      f"(raise max_pixels if this is intended)")


def _check_size(width: int, height: int, max_pixels: int, name: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(f"{name}: image has {width * height:,} pixels ({width}x{height}), over the limit of "
                         f"{max_pixels:,} (raise max_pixels if this is intended)")

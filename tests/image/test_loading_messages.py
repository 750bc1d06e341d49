"""Image-loading messages a user sees: a folder, a missing file, and over-large images with one stated limit
(Pillow's own decompression-bomb wording never reaches the user), checked before any pixels are decoded."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image

from molmo.image.loading import ImageError, check_image_file, load_image


def png(size) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size).save(buf, format="PNG")
    return buf.getvalue()


def test_a_folder_is_named_as_a_folder(tmp_path):
    for fn in (load_image, check_image_file):
        with pytest.raises(ImageError, match="is a folder, not an image file"):
            fn(tmp_path)
        with pytest.raises(ImageError, match="no such image file"):
            fn(tmp_path / "missing.png")


@pytest.mark.parametrize("pixels", [1_000_000, 1_900_000, 4_000_000])  # 1x..2x and over 2x the limit
def test_one_limit_in_our_words(tmp_path, pixels):
    side = int(pixels ** 0.5)
    path = tmp_path / "big.png"
    path.write_bytes(png((side, side)))
    limit = 500_000
    for fn in (lambda: load_image(path, max_pixels=limit), lambda: check_image_file(path, max_pixels=limit),
               lambda: load_image(path.read_bytes(), max_pixels=limit)):
        with pytest.raises(ImageError) as e:
            fn()
        message = str(e.value)
        assert "over the limit of 500,000" in message and "decompression bomb" not in message.lower()
        assert "89,478,485" not in message and "DOS" not in message  # none of Pillow's own figures


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares a size in its header (no pixel data): enough for the size checks."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_a_limit_above_pillows_own_is_honoured(tmp_path):
    # 195 M pixels: Pillow alone refuses this header (over twice its 89.5 M default); our limit decides instead
    path = tmp_path / "huge.png"
    path.write_bytes(png_header(15_000, 13_000))
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    check_image_file(path, max_pixels=200_000_000)  # under our limit: the header is accepted
    with pytest.raises(ImageError, match=r"195,000,000 pixels \(15000x13000\), over the limit of 100,000,000"):
        check_image_file(path, max_pixels=100_000_000)


def test_check_image_file_accepts_a_good_image(tmp_path):
    path = tmp_path / "ok.png"
    path.write_bytes(png((30, 20)))
    check_image_file(path)
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="not a readable image file"):
        check_image_file(tmp_path / "junk.png")

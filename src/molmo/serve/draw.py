"""Overlays: the input image with numbered point markers and their label (the CLI's `--draw`, `molmo demo`).

    from molmo.serve.draw import draw_points
    draw_points(image, answer.points, title=answer.text).save("out.png")

Text is set in DejaVu Sans (bundled with matplotlib, a dependency), which has the dashes, quotes and accents
that Pillow's default font draws as missing-glyph boxes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from molmo.text.points import Point
from molmo.image.loading import ImageSource, load_image

MARKER_FILL = (255, 0, 102)
MARKER_EDGE = (255, 255, 255)
TITLE_LINES = 2  # the answer text is wrapped to this many lines; the legend always gets its own line
PAD = 4


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        try:
            return ImageFont.load_default(size=size)
        except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
            return ImageFont.load_default()


def _ellipsize(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap to `width` pixels; the last allowed line ends in an ellipsis if text is left over."""
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and draw.textlength(f"{line} {words[0]}", font=font) <= width:
            line = f"{line} {words.pop(0)}"
        lines.append(line)
    if words:
        lines[-1] = _ellipsize(draw, f"{lines[-1]} {' '.join(words)}", font, width)
    return [_ellipsize(draw, line, font, width) for line in lines]  # a single word wider than the image


def _label_point(draw: ImageDraw.ImageDraw, x: float, y: float, radius: int, label: str, font, size) -> None:
    """The label right of the marker, or left of it when it would run off the image's right edge."""
    w, h = size
    width = draw.textlength(label, font=font)
    right = x + radius + 5 + width <= w or x - radius - 5 - width < 0  # 5: the gap and the text's outline
    tx = x + radius + 3 if right else x - radius - 3
    half = getattr(font, "size", 12) / 2 + 1  # keep the text inside the image vertically too
    draw.text((tx, min(max(y, half), h - half)), label, fill=MARKER_FILL, font=font, anchor="lm" if right else "rm",
              stroke_width=2, stroke_fill=MARKER_EDGE)


def draw_points(image: ImageSource, points: Sequence[Point], title: str | None = None) -> Image.Image:
    """A copy of the image with a numbered disc on every point and a band on top holding the title (wrapped to
    two lines) and, when all points share one label, a legend line `label: N points`; else each point is
    labelled beside it."""
    img = Image.fromarray(load_image(image)) if not isinstance(image, Image.Image) else image.convert("RGB").copy()
    w, h = img.size
    radius = max(6, round(min(w, h) / 40))
    font = _font(max(10, radius + 4))
    draw = ImageDraw.Draw(img)
    labels = {p.label for p in points if p.label}
    shared = labels.pop() if len(labels) == 1 and all(p.label for p in points) else None
    for i, p in enumerate(points, 1):
        x, y = float(p.x), float(p.y)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=MARKER_FILL, outline=MARKER_EDGE,
                     width=max(1, radius // 4))
        draw.text((x, y), str(i), fill=MARKER_EDGE, font=font, anchor="mm")
        if p.label and not shared:
            _label_point(draw, x, y, radius, p.label, font, (w, h))
    if shared and title and " ".join(title.split()).lower() == shared.lower():
        title = None  # a bare point answer reads as its label: the legend says it
    band_font = _font(max(12, min(h // 30, w // 28)))
    lines = _wrap(draw, " ".join(title.split()), band_font, w - 2 * PAD, TITLE_LINES) if title else []
    legend = f"{shared}: {len(points)} point{'s' if len(points) != 1 else ''}" if shared else None
    if legend:
        lines.append(_ellipsize(draw, legend, band_font, w - 2 * PAD))
    if not lines:
        return img
    ascent, descent = band_font.getmetrics() if hasattr(band_font, "getmetrics") else (12, 3)
    line_h = ascent + descent + 2
    canvas = Image.new("RGB", (w, h + line_h * len(lines) + 2 * PAD), (255, 255, 255))
    canvas.paste(img, (0, line_h * len(lines) + 2 * PAD))
    band = ImageDraw.Draw(canvas)
    for k, line in enumerate(lines):
        is_legend = legend is not None and k == len(lines) - 1
        band.text((PAD, PAD + k * line_h), line, fill=MARKER_FILL if is_legend else (0, 0, 0), font=band_font)
    return canvas

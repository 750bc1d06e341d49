"""Overlays: the input image with numbered point markers and their label (the CLI's `--draw`, `molmo demo`).

    from molmo.serve.draw import draw_points
    draw_points(image, answer.points, title=answer.text).save("out.png")
"""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from molmo.data.points import Point
from molmo.image.loading import ImageSource, load_image

MARKER_FILL = (255, 0, 102)
MARKER_EDGE = (255, 255, 255)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def draw_points(image: ImageSource, points: Sequence[Point], title: str | None = None) -> Image.Image:
    """A copy of the image with a numbered disc on every point and a title band at the top. When all points
    share one label it goes in the band (`label: N points`), else beside each point."""
    img = Image.fromarray(load_image(image)) if not isinstance(image, Image.Image) else image.convert("RGB").copy()
    w, h = img.size
    radius = max(6, round(min(w, h) / 40))
    font = _font(max(10, radius + 4))
    draw = ImageDraw.Draw(img)
    labels = {p.label for p in points if p.label}
    shared = labels.pop() if len(labels) == 1 and all(p.label for p in points) else None
    if shared:
        legend = f"{shared}: {len(points)} point{'s' if len(points) != 1 else ''}"
        title = f"{title} — {legend}" if title else legend
    for i, p in enumerate(points, 1):
        x, y = float(p.x), float(p.y)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=MARKER_FILL, outline=MARKER_EDGE,
                     width=max(1, radius // 4))
        draw.text((x, y), str(i), fill=MARKER_EDGE, font=font, anchor="mm")
        if p.label and not shared:
            draw.text((x + radius + 2, y), p.label, fill=MARKER_FILL, font=font, anchor="lm",
                      stroke_width=2, stroke_fill=MARKER_EDGE)
    if title:
        band_font = _font(max(12, h // 30))
        text = title if len(title) <= 120 else title[:117] + "..."
        box = draw.textbbox((0, 0), text, font=band_font)
        band = box[3] - box[1] + 8
        canvas = Image.new("RGB", (w, h + band), (255, 255, 255))
        canvas.paste(img, (0, band))
        ImageDraw.Draw(canvas).text((4, 4 - box[1]), text, fill=(0, 0, 0), font=band_font)
        img = canvas
    return img

"""A self-contained HTML gallery of an own-data JSONL file (or a directory holding data.jsonl): every image
as an embedded base64 JPEG thumbnail with the points of its point/count annotations drawn and numbered,
and under it the Molmo prompt and answer of each annotation (as the SFT formatter writes them).

    build_gallery("data/points", "points.html", n=50)
    molmo data show data/points --out points.html --n 50
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from molmo.data.example import RawExample
from molmo.data.formatter import Formatter
from molmo.data.owndata import read_own_data

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60)]

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title><style>
body {{ font-family: sans-serif; margin: 16px; background: #f6f6f6; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 14px; }}
.card {{ background: white; border: 1px solid #ddd; padding: 8px; width: {width}px; }}
.card img {{ display: block; max-width: 100%; }}
.ann {{ font-size: 12px; margin-top: 6px; border-left: 4px solid; padding-left: 5px; white-space: pre-wrap;
        word-break: break-word; }}
.q {{ color: #333; }} .a {{ color: #05a; }} .id {{ color: #888; font-size: 11px; }}
</style></head><body><h2>{title}</h2><p>{summary}</p><div class="grid">
{cards}
</div></body></html>
"""


def data_file(source: str | Path) -> Path:
    source = Path(source)
    path = source / "data.jsonl" if source.is_dir() else source
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no own-data JSONL file (give a .jsonl file or a folder with data.jsonl)")
    return path


def render_thumbnail(example: RawExample, thumb: int = 320) -> Image.Image:
    """The image shrunk to at most `thumb` pixels wide/high, with each point annotation's points drawn in its
    colour and numbered 1..n."""
    with Image.open(example.image) as im:
        image = ImageOps.exif_transpose(im).convert("RGB")
    w, h = image.size
    scale = min(1.0, thumb / max(w, h))
    image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for k, a in enumerate(example.annotations):
        colour = PALETTE[k % len(PALETTE)]
        for j, p in enumerate(a.points or [], 1):
            x, y = p[0] * scale, p[1] * scale
            r = 4
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline="white")
            draw.text((x + r + 1, y - r - 2), str(j), fill=colour, font=font, stroke_width=1, stroke_fill="white")
    return image


def _jpeg_base64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _annotation_html(example: RawExample, formatter: Formatter, index: int) -> str:
    rng = formatter.rng(index)
    parts = []
    for k, a in enumerate(example.annotations):
        colour = "#%02x%02x%02x" % PALETTE[k % len(PALETTE)]
        strings = formatter.format_annotation(a, example.image_size, rng)
        lines = "".join(
            f'<div class="{"q" if s.startswith(" User:") else "a"}">{html.escape(s.strip(), quote=False)}</div>' for s in strings)
        parts.append(f'<div class="ann" style="border-color:{colour}"><b>{html.escape(a.kind)}</b>{lines}</div>')
    return "".join(parts)


def gallery_html(examples: list[RawExample], title: str = "molmo data", thumb: int = 320, seed: int = 0) -> str:
    formatter = Formatter(stage="sft", seed=seed, dataset_size=len(examples))
    cards = []
    for i, ex in enumerate(examples):
        img = _jpeg_base64(render_thumbnail(ex, thumb))
        cards.append(f'<div class="card"><img src="data:image/jpeg;base64,{img}" alt="{html.escape(str(ex.id))}">'
                     f'<div class="id">{html.escape(str(ex.id))}</div>{_annotation_html(ex, formatter, i)}</div>')
    n_ann = sum(len(e.annotations) for e in examples)
    summary = f"{len(examples)} image(s), {n_ann} annotation(s)"
    return _PAGE.format(title=html.escape(title), width=thumb + 20, summary=summary, cards="\n".join(cards))


def build_gallery(source: str | Path, out: str | Path, n: int = 50, thumb: int = 320, seed: int = 0,
                  sample: bool = False) -> Path:
    """Write the gallery of the first n images (or n random ones with sample=True) of `source` to `out`."""
    path = data_file(source)
    examples = read_own_data(path)
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if sample and len(examples) > n:
        keep = np.sort(np.random.default_rng(seed).choice(len(examples), size=n, replace=False))
        examples = [examples[i] for i in keep]
    else:
        examples = examples[:n]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(gallery_html(examples, title=str(path), thumb=thumb, seed=seed))
    return out


__all__ = ["build_gallery", "gallery_html", "render_thumbnail"]

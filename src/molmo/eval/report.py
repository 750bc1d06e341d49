"""A self-contained HTML report of an evaluation: the metrics table, then sample items per benchmark / group
with a base64 thumbnail, the prompt, the prediction and the reference. Pointing items show the predicted
points (filled red dots) and the reference points (green rings) drawn on the thumbnail with PIL.

    write_report("out/report.html", metrics, samples)  # samples: list[ReportSample]
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from molmo.eval.metrics.pointing import extract_points

PREDICTED_COLOUR = (230, 30, 30)
REFERENCE_COLOUR = (20, 170, 60)
THUMBNAIL_SIZE = 384


@dataclass
class ReportSample:
    group: str
    id: str
    image: Any  # path, bytes or PIL image
    prompt: str
    prediction: str
    reference: str
    reference_points: list[list[float]] = field(default_factory=list)  # pixels of the original image
    draw_points: bool = False  # pointing item: draw predicted and reference points
    scores: dict = field(default_factory=dict)


def _open(image: Any) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as im:
        return im.convert("RGB")


def render_thumbnail(sample: ReportSample) -> Image.Image:
    """The sample's image, at most THUMBNAIL_SIZE on its long side, with points drawn when asked."""
    im = _open(sample.image)
    w, h = im.size
    scale = min(1.0, THUMBNAIL_SIZE / max(w, h))
    im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))))
    if sample.draw_points:
        draw = ImageDraw.Draw(im)
        r = max(4, round(min(im.size) / 40))
        for x, y in (p[:2] for p in sample.reference_points):
            x, y = x * scale, y * scale
            draw.ellipse([x - r - 2, y - r - 2, x + r + 2, y + r + 2], outline=REFERENCE_COLOUR, width=3)
        for x, y in extract_points(sample.prediction, w, h):
            x, y = x * scale, y * scale
            draw.ellipse([x - r / 2, y - r / 2, x + r / 2, y + r / 2], fill=PREDICTED_COLOUR,
                         outline=(255, 255, 255))
    return im


def _data_uri(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))


def _metrics_table(metrics: dict) -> str:
    rows = []
    for name, values in metrics.items():
        if isinstance(values, dict):
            cells = ", ".join(f"{html.escape(k)}={_fmt(v)}" for k, v in values.items() if not isinstance(v, dict))
        else:
            cells = _fmt(values)
        rows.append(f"<tr><th>{html.escape(name)}</th><td>{cells}</td></tr>")
    return "<table class='metrics'>" + "".join(rows) + "</table>"


_CSS = """body{font-family:sans-serif;margin:2em;background:#fafafa;color:#222}
table.metrics td,table.metrics th{padding:4px 10px;text-align:left;border-bottom:1px solid #ddd}
.card{display:flex;gap:1em;background:#fff;border:1px solid #ddd;border-radius:6px;padding:1em;margin:1em 0}
.card img{max-width:384px;border:1px solid #ccc}.field{margin:.3em 0}.label{font-weight:bold;color:#555}
pre{white-space:pre-wrap;margin:0;font-family:monospace}.legend span{display:inline-block;width:12px;height:12px;
border-radius:6px;margin:0 4px 0 12px;vertical-align:middle}"""


def render_report(metrics: dict, samples: list[ReportSample], title: str = "molmo eval") -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><h2>Metrics</h2>",
             _metrics_table(metrics),
             "<p class='legend'>Points:<span style='background:rgb%s'></span>predicted"
             "<span style='border:3px solid rgb%s;width:8px;height:8px'></span>reference</p>"
             % (PREDICTED_COLOUR, REFERENCE_COLOUR)]
    group = None
    for s in samples:
        if s.group != group:
            group = s.group
            parts.append(f"<h2>{html.escape(group)}</h2>")
        try:
            img = f"<img src='{_data_uri(render_thumbnail(s))}' alt='{html.escape(s.id)}'>"
        except (OSError, ValueError) as e:
            img = f"<div>image unavailable: {html.escape(str(e))}</div>"
        fields = [("id", s.id), ("prompt", s.prompt), ("prediction", s.prediction), ("reference", s.reference),
                  ("scores", json.dumps(s.scores))]
        body = "".join(f"<div class='field'><span class='label'>{k}</span><pre>{html.escape(str(v))}</pre></div>"
                       for k, v in fields)
        parts.append(f"<div class='card'>{img}<div>{body}</div></div>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(path: str | Path, metrics: dict, samples: list[ReportSample], title: str = "molmo eval") -> Path:
    path = Path(path)
    path.write_text(render_report(metrics, samples, title), encoding="utf-8")
    return path

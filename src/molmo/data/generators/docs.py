"""The `docs` generator (PixMo-Docs style, no LLM): charts (see `docs_charts.py`: letter-labelled bar charts,
horizontal bars, grouped bars, lines, pies, scatter plots), plus tables, box-and-arrow diagrams and text
documents drawn here with PIL. Every question's answer is computed from the generated data in
`scene["data"]`; numbers use the "relaxed" metric, labels "exact"; text documents add a transcript line.

    item = generate_one("docs", seed=0, index=1, kind="bar", difficulty="easy")
    generate_dataset("docs", n=500, out="data/docs", doc_kind="chart")
    molmo data generate docs --n 500 --out data/docs --option doc_kind=bar --difficulty easy

Options: kind = "any" | "chart" (any chart kind) | "bar" | "hbar" | "grouped_bar" | "line" | "pie" | "scatter" |
"table" | "diagram" | "text"; difficulty = "easy" (vertical bar charts only, 3–5 bars, value labels, plain
style) | "normal" | "hard"; recipe_styles = True puts the recipe's style ("pixmo_docs_charts", …) on every line
(off: lines get the default user_qa style, which suits plain questions at inference).
"""

from __future__ import annotations

import os
import string
from functools import lru_cache

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from molmo.data.generators.base import GeneratedImage, register
from molmo.data.generators.docs_charts import (CHART_RENDERERS, CITIES, PALETTE, check_difficulty, fmt_number,
                                               pick, qa)

KINDS = ("bar", "hbar", "grouped_bar", "line", "pie", "scatter", "table", "diagram", "text")
WEIGHTS = (0.3, 0.1, 0.1, 0.1, 0.08, 0.07, 0.1, 0.08, 0.07)  # letter-labelled bar charts are the priority
RECIPE_STYLE = {"bar": "pixmo_docs_charts", "hbar": "pixmo_docs_charts", "grouped_bar": "pixmo_docs_charts",
                "line": "pixmo_docs_charts", "pie": "pixmo_docs_charts", "scatter": "pixmo_docs_charts",
                "table": "pixmo_docs_tables", "diagram": "pixmo_docs_diagrams", "text": "pixmo_docs_other"}
KIND_NAMES = {"bar": "bar chart", "hbar": "horizontal bar chart", "grouped_bar": "grouped bar chart",
              "line": "line chart", "pie": "pie chart", "scatter": "scatter plot", "table": "table",
              "diagram": "diagram", "text": "text document"}
NAMES = ["Alice", "Bruno", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia", "Kofi", "Lena",
         "Marta", "Nadia", "Omar", "Priya"]
SUBJECTS = ["Math", "Art", "Music", "Sport", "Physics", "History", "Biology", "Chess"]
PRODUCTS = ["Paper", "Ink", "Stamps", "Folders", "Tape", "Pens", "Labels", "Stapler", "Envelopes", "Markers"]
STEPS = ["Start", "Load", "Check", "Sort", "Store", "Send", "Review", "Build", "Test", "Ship", "Plan", "Stop"]
FONT_FILES = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf"]


@lru_cache(maxsize=64)
def font(size: int, file: str = "DejaVuSans.ttf") -> ImageFont.FreeTypeFont:
    """A TrueType font shipped with matplotlib, so text looks the same on every machine."""
    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", file), size)


def _light(rng: np.random.Generator, low: int = 225) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, 256, 3))


def table_image(rng: np.random.Generator, difficulty: str):
    """A score table: a name column and 2–4 subject columns, integer cells, varied header colour and font."""
    n_rows = int(rng.integers(3, 6 if difficulty == "easy" else 8))
    rows = [str(v) for v in rng.choice(NAMES, size=n_rows, replace=False)]
    cols = [str(v) for v in rng.choice(SUBJECTS, size=int(rng.integers(2, 5)), replace=False)]
    cells = {r: {c: int(rng.integers(10, 100)) for c in cols} for r in rows}
    size = int(rng.integers(12, 16))
    f = font(size, pick(rng, FONT_FILES[:3]))
    bold = font(size, "DejaVuSans-Bold.ttf")
    cw, rh, pad = int(size * 5.5), int(size * 2), 10
    img = Image.new("RGB", (cw * (len(cols) + 1) + 2 * pad, rh * (len(rows) + 1) + 2 * pad), "white")
    d = ImageDraw.Draw(img)
    header = tuple(int(v) for v in rng.integers(150, 235, 3))
    zebra = rng.random() < 0.5
    d.rectangle([pad, pad, img.width - pad, pad + rh], fill=header)
    for j, c in enumerate(["Name"] + cols):
        d.text((pad + 6 + j * cw, pad + rh // 2), c, fill="black", font=bold, anchor="lm")
    for i, r in enumerate(rows, 1):
        y = pad + i * rh
        if zebra and i % 2 == 0:
            d.rectangle([pad, y, img.width - pad, y + rh], fill=(240, 240, 240))
        d.text((pad + 6, y + rh // 2), r, fill="black", font=f, anchor="lm")
        for j, c in enumerate(cols, 1):
            d.text((pad + 6 + j * cw, y + rh // 2), str(cells[r][c]), fill="black", font=f, anchor="lm")
        d.line([pad, y, img.width - pad, y], fill="gray")
    d.rectangle([pad, pad, img.width - pad, img.height - pad], outline="black")
    if rng.random() < 0.5:  # vertical rules in half the tables
        for j in range(1, len(cols) + 1):
            d.line([pad + j * cw, pad, pad + j * cw, img.height - pad], fill="gray")

    r, c = pick(rng, rows), pick(rng, cols)
    lines = [qa(pick(rng, ["What is the value in row {r}, column {c}?", "What did {r} score in {c}?",
                           "What is {r}'s {c} score?"]).format(r=r, c=c), cells[r][c]),
             qa("How many people are listed in the table?", len(rows), "exact")]
    column = [cells[x][c] for x in rows]
    if column.count(max(column)) == 1:
        lines.append(qa(f"Who has the highest {c} score?", rows[int(np.argmax(column))]))
    if column.count(min(column)) == 1:
        lines.append(qa(f"Who has the lowest {c} score?", rows[int(np.argmin(column))]))
    lines.append(qa(f"What is the total of the {c} column?", sum(column)))
    facts = [f"a table of {', '.join(cols)} scores for {len(rows)} people"]
    facts += [f"a row for {x} with " + ", ".join(f"{k} {v}" for k, v in cells[x].items()) for x in rows]
    return img, {"kind": "table", "data": cells, "rows": rows, "columns": cols, "caption_facts": facts}, lines


def _arrow(d: ImageDraw.ImageDraw, start: np.ndarray, end: np.ndarray, colour: str, width: int) -> None:
    v = (end - start) / max(np.linalg.norm(end - start), 1e-6)
    p = np.array([-v[1], v[0]])
    d.line([tuple(start), tuple(end - v * 6)], fill=colour, width=width)
    d.polygon([tuple(end), tuple(end - v * 12 + p * 6), tuple(end - v * 12 - p * 6)], fill=colour)


def _clip_to_box(centre: np.ndarray, direction: np.ndarray, half_w: float, half_h: float) -> np.ndarray:
    """Where a ray from a box centre leaves the box (arrows start and end on box borders)."""
    t = min(half_w / max(abs(direction[0]), 1e-6), half_h / max(abs(direction[1]), 1e-6))
    return centre + direction * (t + 3)


def diagram_image(rng: np.random.Generator, difficulty: str):
    """Boxes on a ring joined by arrows; most boxes point to exactly one other box, some to none."""
    n = int(rng.integers(3, 6 if difficulty == "easy" else 8))
    names = list(string.ascii_uppercase[:n]) if rng.random() < 0.5 else \
        [str(v) for v in rng.choice(STEPS, size=n, replace=False)]
    targets: dict[str, str | None] = {}
    for a in names:  # no reciprocal pairs: two arrows on one line would read as a single double-headed arrow
        free = [b for b in names if b != a and targets.get(b) != a]
        targets[a] = pick(rng, free) if free and rng.random() < 0.8 else None
    if all(t is None for t in targets.values()):
        targets[names[0]] = names[1]
    w, h = 440, 330
    img = Image.new("RGB", (w, h), _light(rng, 240))
    d = ImageDraw.Draw(img)
    f = font(15, pick(rng, FONT_FILES))
    half_w = max(d.textlength(x, font=f) for x in names) / 2 + 10
    half_h = 15
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi)
    rx, ry = w / 2 - half_w - 12, h / 2 - half_h - 12
    pos = {a: np.array([w / 2 + rx * np.cos(t), h / 2 + ry * np.sin(t)]) for a, t in zip(names, angles)}
    arrow_colour = pick(rng, ["black", "#333333", "#1f4e79", "#7a2e2e"])
    for a, b in targets.items():
        if b is None:
            continue
        v = (pos[b] - pos[a]) / np.linalg.norm(pos[b] - pos[a])
        _arrow(d, _clip_to_box(pos[a], v, half_w, half_h), _clip_to_box(pos[b], -v, half_w, half_h),
               arrow_colour, int(rng.integers(2, 4)))
    start = int(rng.integers(len(PALETTE)))
    for i, (a, (x, y)) in enumerate(pos.items()):
        fill = PALETTE[(start + i) % len(PALETTE)] if rng.random() < 0.7 else "white"
        d.rounded_rectangle([x - half_w, y - half_h, x + half_w, y + half_h], radius=6, fill=fill, outline="black")
        d.text((x, y), a, fill="black" if fill == "white" else "white", font=f, anchor="mm")

    arrows = [(a, b) for a, b in targets.items() if b is not None]
    a, b = arrows[int(rng.integers(len(arrows)))]
    lines = [qa(pick(rng, ["What does box {a} point to?", "Where does the arrow from {a} go?",
                           "Which box does {a} lead to?"]).format(a=a), b),
             qa("How many boxes are in the diagram?", n, "exact"),
             qa("How many arrows are in the diagram?", len(arrows), "exact")]
    sources = [x for x, t in arrows if t == b]
    if len(sources) == 1:
        lines.append(qa(f"Which box points to {b}?", sources[0]))
    facts = [f"a diagram of {n} boxes joined by {len(arrows)} arrows"]
    facts += [f"an arrow from {x} to {t}" for x, t in arrows]
    boxes = {k: [round(float(v), 1) for v in p] for k, p in pos.items()}  # box centres in pixels
    return img, {"kind": "diagram", "data": targets, "boxes": boxes,
                 "caption_facts": facts}, lines


def _wrap(text: str, f: ImageFont.FreeTypeFont, width: float) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and f.getlength(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def _invoice(rng: np.random.Generator):
    name, city = pick(rng, NAMES), pick(rng, CITIES)
    products = rng.choice(PRODUCTS, size=int(rng.integers(2, 5)), replace=False)
    items = {str(k): int(rng.integers(2, 90)) for k in products}
    number = int(rng.integers(1000, 9999))
    day, month = int(rng.integers(1, 29)), pick(rng, ["March", "April", "June", "October", "December"])
    total = sum(items.values())
    title = f"INVOICE #{number}"
    body = [f"Date: {day} {month} {2000 + int(rng.integers(10, 25))}", f"Customer: {name}", f"City: {city}", ""] + \
        [f"{k}: ${v}" for k, v in items.items()] + ["", f"Total: ${total}"]
    k = pick(rng, list(items))
    lines = [qa("What is the invoice total?", total), qa("Who is the customer?", name),
             qa(f"How much does {k} cost?", items[k]), qa("What is the invoice number?", str(number)),
             qa("How many items are listed?", len(items), "exact"), qa("Which city is the customer in?", city)]
    data = {"doc": "invoice", "number": number, "customer": name, "city": city, "items": items, "total": total}
    facts = [f"an invoice numbered {number} for {name} in {city}", f"a total of ${total}"] + \
        [f"a line for {k} at ${v}" for k, v in items.items()]
    return title, body, data, lines, facts


def _report(rng: np.random.Generator):
    name, city = pick(rng, NAMES), pick(rng, CITIES)
    year, stores, staff = int(rng.integers(1990, 2024)), int(rng.integers(2, 40)), int(rng.integers(10, 500))
    visitors = int(rng.integers(1, 99)) * 100
    title = pick(rng, ["Annual Report", "Company News", "Branch Update", "Team Notes"])
    paragraphs = [f"In {year}, {name} opened {stores} new stores in {city}.",
                  f"The branch in {city} now employs {staff} people and welcomed {visitors} visitors last month.",
                  f"{name} thanked the team and said the next review will take place in {year + 1}."]
    lines = [qa(f"How many stores did {name} open?", stores),
             qa(f"How many people does the {city} branch employ?", staff),
             qa(f"In which year did {name} open the new stores?", str(year)), qa("Who opened the new stores?", name),
             qa("How many visitors came last month?", visitors), qa("What is the title of the document?", title)]
    data = {"doc": "report", "name": name, "city": city, "year": year, "stores": stores, "staff": staff,
            "visitors": visitors}
    facts = [f"a document titled {title} about {name} in {city}",
             f"a note that {name} opened {stores} stores in {year}"]
    return title, paragraphs, data, lines, facts


def text_document(rng: np.random.Generator, difficulty: str):
    """An invoice or a short report: a title and wrapped lines; the transcript is the text as drawn."""
    title, body, data, lines, facts = (_invoice if rng.random() < 0.5 else _report)(rng)
    width = int(rng.integers(340, 440))
    body_font = font(int(rng.integers(13, 16)), pick(rng, FONT_FILES[:3]))
    title_font = font(19, "DejaVuSans-Bold.ttf")
    drawn = [title] + [w for par in body for w in (_wrap(par, body_font, width - 40) if par else [""])]
    step = int(body_font.size * 1.5)
    img = Image.new("RGB", (width, 40 + 30 + step * (len(drawn) - 1)), _light(rng, 238))
    d = ImageDraw.Draw(img)
    d.text((20, 16), title, fill="black", font=title_font)
    for i, line in enumerate(drawn[1:]):
        d.text((20, 54 + step * i), line, fill="black", font=body_font)
    transcript = "\n".join(x for x in drawn if x)
    return img, {"kind": "text", "title": title, "data": data, "transcript": transcript, "caption_facts": facts}, lines


RENDERERS = {**CHART_RENDERERS, "table": table_image, "diagram": diagram_image, "text": text_document}


@register("docs")
def generate_doc(rng: np.random.Generator, index: int, kind: str = "any", difficulty: str = "normal",
                 recipe_styles: bool = False, doc_kind: str | None = None) -> GeneratedImage:
    # `doc_kind` is `kind` under a name that `generate_dataset(kind, ...)` can pass through as an option.
    kind = doc_kind or kind
    check_difficulty(difficulty)
    if kind in ("any", "chart"):
        pool = [(k, w) for k, w in zip(KINDS, WEIGHTS) if kind == "any" or k in CHART_RENDERERS]
        kind = "bar" if difficulty == "easy" else \
            str(rng.choice([k for k, _ in pool], p=np.array([w for _, w in pool]) / sum(w for _, w in pool)))
    if kind not in RENDERERS:
        raise ValueError(f"unknown docs kind {kind!r}; expected 'any', 'chart' or one of {KINDS}")
    img, scene, lines = RENDERERS[kind](rng, difficulty)
    scene = {"generator": "docs", **scene, "kind_name": KIND_NAMES[scene["kind"]], "difficulty": difficulty,
             "size": list(img.size)}
    if "transcript" in scene:
        lines.append({"question": pick(rng, ["Transcribe the text in this image.", "What does this document say?",
                                             "Read out all the text in the document."]),
                      "answer": scene["transcript"], "metric": "anls"})
    if recipe_styles:
        lines = [{**line, "style": RECIPE_STYLE[kind]} for line in lines]
    scene["recipe_style"] = RECIPE_STYLE[kind]
    return GeneratedImage(image=img, annotations=lines, scene=scene)


__all__ = ["KINDS", "RENDERERS", "generate_doc", "fmt_number"]

"""The `docs` generator: charts (bar with letter-labelled bars, horizontal bar, grouped bar, line, pie,
scatter) rendered with matplotlib, plus tables, box-and-arrow diagrams and text documents drawn with PIL,
each from generated data with question/answer pairs computed exactly from that data (PixMo-Docs style).

    item = generate_one("docs", seed=0, index=1, kind="bar")     # item.scene["data"] holds the values
    molmo data generate docs --n 500 --out data/docs
"""

from __future__ import annotations

import io
import string

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from molmo.data.generators.base import GeneratedImage, register  # noqa: E402

KINDS = ("bar", "hbar", "grouped_bar", "line", "pie", "scatter", "table", "diagram", "text")
WEIGHTS = (0.3, 0.1, 0.1, 0.1, 0.08, 0.07, 0.1, 0.08, 0.07)
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]
TITLES = ["Sales", "Revenue", "Visitors", "Scores", "Rainfall", "Output", "Downloads", "Orders", "Costs", "Votes"]
VALUE_Q = ["What is the value of bar {b}?", "How tall is bar {b}?", "What value does {b} have?", "Value of {b}?",
           "What is the value for {b}?", "Read the value of bar {b}.", "How much is {b}?"]
NAMES = ["Alice", "Bruno", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia", "Kofi", "Lena"]
CITIES = ["Oslo", "Lima", "Pune", "Accra", "Quito", "Hanoi", "Perth", "Turin", "Cork", "Fez"]


def _strs(values) -> list[str]:
    return [str(v) for v in values]


def _figure_image(fig) -> Image.Image:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _values(rng, n: int, integer: bool, top: int) -> list[float]:
    if integer:
        return [int(v) for v in rng.integers(1, top + 1, n)]
    return [round(float(v), 1) for v in rng.uniform(1, top, n)]


def _fig(rng, easy: bool):
    w, h = (3.2, 2.6) if easy else (float(rng.uniform(3.0, 4.6)), float(rng.uniform(2.4, 3.6)))
    fig, ax = plt.subplots(figsize=(w, h), dpi=100)
    if not easy and rng.random() < 0.5:
        ax.grid(axis="y", alpha=0.4)
        ax.set_axisbelow(True)
    return fig, ax


def bar_chart(rng: np.random.Generator, easy: bool, horizontal: bool = False) -> tuple[Image.Image, dict, list[dict]]:
    n = int(rng.integers(3, 6 if easy else 9))
    labels = list(string.ascii_uppercase[:n])
    top = int(rng.choice([10, 20, 50, 100]))
    values = _values(rng, n, integer=easy or rng.random() < 0.7, top=top)
    fig, ax = _fig(rng, easy)
    colours = [PALETTE[int(rng.integers(len(PALETTE)))]] * n if rng.random() < 0.6 else \
        [PALETTE[i % len(PALETTE)] for i in range(n)]
    bars = (ax.barh if horizontal else ax.bar)(labels, values, color=colours, **({"height": 0.6} if horizontal else
                                                                               {"width": float(rng.uniform(0.5, 0.8))}))
    show_labels = easy or rng.random() < 0.4
    if show_labels:
        ax.bar_label(bars, labels=[f"{v:g}" for v in values], fontsize=8, padding=2)
    title = str(rng.choice(TITLES))
    ax.set_title(title, fontsize=10)
    (ax.set_xlim if horizontal else ax.set_ylim)(0, top * 1.12)
    fig.tight_layout()
    img = _figure_image(fig)
    qa = []
    for b in _strs(rng.choice(labels, size=min(3, n), replace=False)):
        qa.append({"question": str(rng.choice(VALUE_Q)).format(b=b), "answer": f"{values[labels.index(b)]:g}",
                   "metric": "relaxed"})
    hi, lo = labels[int(np.argmax(values))], labels[int(np.argmin(values))]
    if values.count(max(values)) == 1:
        qa.append({"question": "Which bar is the highest?" if not horizontal else "Which bar is the longest?",
                   "answer": hi, "metric": "exact"})
    if values.count(min(values)) == 1:
        qa.append({"question": "Which bar has the smallest value?", "answer": lo, "metric": "exact"})
    a, b = _strs(rng.choice(labels, size=2, replace=False))
    va, vb = values[labels.index(a)], values[labels.index(b)]
    if va != vb:
        qa.append({"question": f"Which is larger, {a} or {b}?", "answer": a if va > vb else b, "metric": "exact"})
    qa.append({"question": "How many bars are there?", "answer": str(n), "metric": "exact"})
    facts = [f"a {'horizontal' if horizontal else 'vertical'} bar chart titled {title} with {n} bars"] + \
        [f"bar {lab} is {v:g}" for lab, v in zip(labels, values)]
    return img, {"kind": "hbar" if horizontal else "bar", "title": title, "data": dict(zip(labels, values)),
                 "value_labels": show_labels, "caption_facts": facts}, qa


def grouped_bar(rng, easy) -> tuple[Image.Image, dict, list[dict]]:
    groups = _strs(rng.choice(["2021", "2022", "2023", "Q1", "Q2", "North", "South"], size=2, replace=False))
    cats = list(string.ascii_uppercase[: int(rng.integers(3, 6))])
    data = {g: _values(rng, len(cats), True, 20) for g in groups}
    fig, ax = _fig(rng, easy)
    x = np.arange(len(cats))
    for k, g in enumerate(groups):
        bars = ax.bar(x + (k - 0.5) * 0.38, data[g], 0.38, label=g, color=PALETTE[k * 2])
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(x, cats)
    ax.set_ylim(0, 24)
    ax.legend(fontsize=7)
    fig.tight_layout()
    c, g = str(rng.choice(cats)), str(rng.choice(groups))
    qa = [{"question": f"What is the value of {c} for {g}?", "answer": str(data[g][cats.index(c)]), "metric": "relaxed"},
          {"question": f"What is the total of {c} across {groups[0]} and {groups[1]}?",
           "answer": str(data[groups[0]][cats.index(c)] + data[groups[1]][cats.index(c)]), "metric": "relaxed"}]
    facts = [f"a grouped bar chart comparing {groups[0]} and {groups[1]} for {', '.join(cats)}"]
    return _figure_image(fig), {"kind": "grouped_bar", "data": data, "categories": cats, "caption_facts": facts}, qa


def line_chart(rng, easy) -> tuple[Image.Image, dict, list[dict]]:
    n = int(rng.integers(4, 8))
    start = int(rng.integers(2000, 2016))
    years = [start + k for k in range(n)]
    values = _values(rng, n, True, 50)
    fig, ax = _fig(rng, easy)
    ax.plot(years, values, marker="o", color=PALETTE[int(rng.integers(len(PALETTE)))])
    for x, y in zip(years, values):
        ax.annotate(str(y), (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
    ax.set_xticks(years, [str(y) for y in years], fontsize=7)
    ax.set_ylim(0, 60)
    title = str(rng.choice(TITLES))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    y = int(rng.choice(years))
    peak = years[int(np.argmax(values))]
    qa = [{"question": f"What is the value in {y}?", "answer": str(values[years.index(y)]), "metric": "relaxed"}]
    if values.count(max(values)) == 1:
        qa.append({"question": "In which year is the value highest?", "answer": str(peak), "metric": "exact"})
    facts = [f"a line chart titled {title} from {years[0]} to {years[-1]}"]
    return _figure_image(fig), {"kind": "line", "data": dict(zip(map(str, years), values)), "caption_facts": facts}, qa


def pie_chart(rng, easy) -> tuple[Image.Image, dict, list[dict]]:
    n = int(rng.integers(3, 6))
    cats = _strs(rng.choice(CITIES, size=n, replace=False))
    raw = rng.integers(5, 40, n).astype(float)
    shares = [int(v) for v in np.round(raw / raw.sum() * 100)]
    shares[-1] = 100 - sum(shares[:-1])
    fig, ax = plt.subplots(figsize=(3.2, 3.0), dpi=100)
    ax.pie(shares, labels=[f"{c} {s}%" for c, s in zip(cats, shares)], colors=PALETTE[:n],
           textprops={"fontsize": 7}, startangle=float(rng.uniform(0, 360)))
    fig.tight_layout()
    c = str(rng.choice(cats))
    qa = [{"question": f"What share does {c} have?", "answer": f"{shares[cats.index(c)]}%", "metric": "relaxed"}]
    if shares.count(max(shares)) == 1:
        qa.append({"question": "Which category has the largest share?", "answer": cats[int(np.argmax(shares))],
                   "metric": "exact"})
    return _figure_image(fig), {"kind": "pie", "data": dict(zip(cats, shares)),
                                "caption_facts": [f"a pie chart with {n} slices: " + ", ".join(cats)]}, qa


def scatter_chart(rng, easy) -> tuple[Image.Image, dict, list[dict]]:
    n = int(rng.integers(5, 16))
    xs, ys = rng.uniform(0, 10, n), rng.uniform(0, 10, n)
    fig, ax = _fig(rng, easy)
    ax.scatter(xs, ys, color=PALETTE[int(rng.integers(len(PALETTE)))], s=18)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    fig.tight_layout()
    qa = [{"question": "How many points are in the scatter plot?", "answer": str(n), "metric": "exact"}]
    return _figure_image(fig), {"kind": "scatter", "data": {"x": xs.round(2).tolist(), "y": ys.round(2).tolist()},
                                "caption_facts": [f"a scatter plot with {n} points"]}, qa


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def table_image(rng, easy) -> tuple[Image.Image, dict, list[dict]]:
    rows = _strs(rng.choice(NAMES, size=int(rng.integers(3, 7)), replace=False))
    cols = _strs(rng.choice(["Math", "Art", "Music", "Sport", "Physics", "History"], size=int(rng.integers(2, 5)),
                           replace=False))
    cells = {r: {c: int(rng.integers(10, 100)) for c in cols} for r in rows}
    cw, rh, font = 80, 26, _font(13)
    img = Image.new("RGB", (cw * (len(cols) + 1) + 20, rh * (len(rows) + 1) + 20), "white")
    d = ImageDraw.Draw(img)
    header = tuple(int(v) for v in rng.integers(180, 240, 3))
    d.rectangle([10, 10, img.width - 10, 10 + rh], fill=header)
    for j, c in enumerate(["Name"] + cols):
        d.text((15 + j * cw, 15), c, fill="black", font=font)
    for i, r in enumerate(rows, 1):
        d.text((15, 15 + i * rh), r, fill="black", font=font)
        for j, c in enumerate(cols, 1):
            d.text((15 + j * cw, 15 + i * rh), str(cells[r][c]), fill="black", font=font)
        d.line([10, 10 + i * rh, img.width - 10, 10 + i * rh], fill="gray")
    r, c = str(rng.choice(rows)), str(rng.choice(cols))
    qa = [{"question": f"What is the value in row {r}, column {c}?", "answer": str(cells[r][c]), "metric": "exact"},
          {"question": f"What did {r} score in {c}?", "answer": str(cells[r][c]), "metric": "exact"}]
    col = [cells[x][c] for x in rows]
    if col.count(max(col)) == 1:
        qa.append({"question": f"Who has the highest {c} score?", "answer": rows[int(np.argmax(col))], "metric": "exact"})
    return img, {"kind": "table", "data": cells, "caption_facts": [f"a table of {', '.join(cols)} scores for "
                                                                   f"{len(rows)} people"]}, qa


def diagram_image(rng, easy) -> tuple[Image.Image, dict, list[dict]]:
    n = int(rng.integers(3, 6))
    names = list(string.ascii_uppercase[:n])
    targets = {a: str(rng.choice([b for b in names if b != a])) for a in names}
    w, h = 420, 300
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, np.pi)
    pos = {a: (w / 2 + 140 * np.cos(t), h / 2 + 105 * np.sin(t)) for a, t in zip(names, angles)}
    font = _font(16)
    for a, b in targets.items():
        (x0, y0), (x1, y1) = pos[a], pos[b]
        v = np.array([x1 - x0, y1 - y0])
        v /= np.linalg.norm(v)
        s, e = np.array([x0, y0]) + v * 26, np.array([x1, y1]) - v * 26
        d.line([tuple(s), tuple(e)], fill="black", width=2)
        p = np.array([-v[1], v[0]])
        d.polygon([tuple(e), tuple(e - v * 10 + p * 5), tuple(e - v * 10 - p * 5)], fill="black")
    for a, (x, y) in pos.items():
        d.rectangle([x - 22, y - 16, x + 22, y + 16], fill=PALETTE[names.index(a) % len(PALETTE)], outline="black")
        d.text((x, y), a, fill="white", font=font, anchor="mm")
    a = str(rng.choice(names))
    qa = [{"question": f"What does box {a} point to?", "answer": targets[a], "metric": "exact"},
          {"question": "How many boxes are in the diagram?", "answer": str(n), "metric": "exact"}]
    return img, {"kind": "diagram", "data": targets, "caption_facts": [f"a diagram of {n} boxes joined by arrows"]}, qa


def text_document(rng, easy) -> tuple[Image.Image, dict, list[dict]]:
    name, city = str(rng.choice(NAMES)), str(rng.choice(CITIES))
    items = {str(k): int(rng.integers(2, 90)) for k in _strs(rng.choice(["Paper", "Ink", "Stamps", "Folders", "Tape",
                                                                    "Pens"], size=3, replace=False))}
    number = int(rng.integers(1000, 9999))
    lines = [f"INVOICE #{number}", f"Customer: {name}", f"City: {city}", ""] + \
        [f"{k}: ${v}" for k, v in items.items()] + ["", f"Total: ${sum(items.values())}"]
    img = Image.new("RGB", (360, 30 + 22 * len(lines)), tuple(int(v) for v in rng.integers(235, 256, 3)))
    d = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        d.text((20, 15 + 22 * i), line, fill="black", font=_font(16 if i == 0 else 14))
    k = str(rng.choice(list(items)))
    qa = [{"question": "What is the invoice total?", "answer": f"${sum(items.values())}", "metric": "exact"},
          {"question": "Who is the customer?", "answer": name, "metric": "exact"},
          {"question": f"How much does {k} cost?", "answer": f"${items[k]}", "metric": "exact"},
          {"question": "What is the invoice number?", "answer": str(number), "metric": "exact"}]
    transcript = "\n".join(x for x in lines if x)
    return img, {"kind": "text", "data": {"items": items, "customer": name, "city": city, "number": number},
                 "transcript": transcript, "caption_facts": [f"an invoice for {name} in {city}"]}, qa


RENDERERS = {"bar": bar_chart, "hbar": lambda r, e: bar_chart(r, e, horizontal=True), "grouped_bar": grouped_bar,
             "line": line_chart, "pie": pie_chart, "scatter": scatter_chart, "table": table_image,
             "diagram": diagram_image, "text": text_document}


@register("docs")
def generate_doc(rng: np.random.Generator, index: int, kind: str = "any", difficulty: str = "normal") -> GeneratedImage:
    if kind == "any":
        kind = str(rng.choice(KINDS, p=np.array(WEIGHTS) / sum(WEIGHTS)))
    if kind not in RENDERERS:
        raise ValueError(f"unknown docs kind {kind!r}; expected 'any' or one of {KINDS}")
    img, scene, qa = RENDERERS[kind](rng, difficulty == "easy")
    scene = {"generator": "docs", **scene, "size": list(img.size)}
    if "transcript" in scene:
        qa.append({"question": "Transcribe the text in this image.", "answer": scene["transcript"], "metric": "anls"})
    return GeneratedImage(image=img, annotations=qa, scene=scene)

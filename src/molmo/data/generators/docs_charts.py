"""Chart renderers of the `docs` generator (matplotlib, Agg, no pyplot state): vertical/horizontal bar charts
with letter-labelled bars, grouped bars, line charts, pies and scatter plots. Each renderer takes
`(rng, difficulty)` and returns `(image, scene, qa_lines)` where every answer is computed from `scene["data"]`.

Used through `molmo.data.generators.docs` (`generate_one("docs", seed, index, kind="bar")`); the shared
helpers here (`fmt_number`, `qa`, `PALETTE`, `ChartStyle`) are used by the PIL renderers there too.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf", "#3b3b98"]
TITLES = ["Sales", "Revenue", "Visitors", "Scores", "Rainfall", "Output", "Downloads", "Orders", "Costs", "Votes",
          "Members", "Energy Use", "Exports", "Bookings", "Tickets Sold", "Survey Results"]
VALUE_AXIS = ["Value", "Amount", "Count", "Units", "Total", "Millions", "Percent", "Score"]
FONTS = ["DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "STIXGeneral"]
CITIES = ["Oslo", "Lima", "Pune", "Accra", "Quito", "Hanoi", "Perth", "Turin", "Cork", "Fez", "Kyoto", "Bergen"]
SERIES = ["2021", "2022", "2023", "Q1", "Q2", "Q3", "North", "South", "East", "Online", "Retail", "Men", "Women"]
DIFFICULTIES = ("easy", "normal", "hard")

VALUE_Q = ["What is the value of bar {b}?", "How tall is bar {b}?", "What value does {b} have?", "Value of {b}?",
           "What is the value for {b}?", "How high is bar {b}?", "What is the height of bar {b}?",
           "According to the chart, what is the value of {b}?", "How much is {b}?"]
VALUE_Q_HORIZONTAL = ["What is the value of bar {b}?", "How long is bar {b}?", "What value does {b} have?",
                      "Value of {b}?", "What is the length of bar {b}?", "How much is {b}?"]
MAX_Q = ["Which bar is the highest?", "Which bar has the largest value?", "Which bar is the tallest?",
         "Which label has the highest value?"]
MAX_Q_HORIZONTAL = ["Which bar is the longest?", "Which bar has the largest value?",
                    "Which label has the highest value?"]
MIN_Q = ["Which bar is the lowest?", "Which bar has the smallest value?", "Which bar is the shortest?",
         "Which label has the lowest value?"]
COUNT_Q = ["How many bars are there?", "How many bars does the chart have?", "How many bars are shown?"]
COMPARE_Q = ["Which is larger, {a} or {b}?", "Which has a higher value, {a} or {b}?", "Is {a} or {b} bigger?"]


def fmt_number(value: float) -> str:
    """Integers without a decimal point, everything else with at most one decimal ("12", "3.5")."""
    value = round(float(value), 1)
    return str(int(value)) if value == int(value) else f"{value:.1f}"


def qa(question: str, answer, metric: str | None = None) -> dict:
    """One own-data question line; numbers get the "relaxed" metric (5 % tolerance), labels "exact"."""
    if metric is None:
        metric = "relaxed" if isinstance(answer, (int, float, np.integer, np.floating)) else "exact"
    text = fmt_number(answer) if isinstance(answer, (int, float, np.integer, np.floating)) else str(answer)
    return {"question": question, "answer": text, "metric": metric}


def pick(rng: np.random.Generator, options) -> str:
    return str(options[int(rng.integers(len(options)))])


def check_difficulty(difficulty: str) -> None:
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"unknown docs difficulty {difficulty!r}; expected one of {DIFFICULTIES}")


@dataclass(frozen=True)
class ChartStyle:
    """The look of one chart; `plain()` is the easy preset, `draw(rng)` a random one."""
    width_in: float = 3.4
    height_in: float = 2.8
    dpi: int = 100
    font: str = "DejaVu Sans"
    font_size: float = 8.0
    grid: bool = False
    background: str = "white"
    spines: bool = True

    @classmethod
    def plain(cls) -> "ChartStyle":
        return cls()

    @classmethod
    def draw(cls, rng: np.random.Generator, difficulty: str) -> "ChartStyle":
        if difficulty == "easy":
            return cls.plain()
        light = ["white", "white", "white", "#f7f7f7", "#fbf8ef", "#eef3f8"]
        return cls(width_in=float(rng.uniform(3.0, 4.8)), height_in=float(rng.uniform(2.4, 3.8)),
                   dpi=int(rng.choice([90, 100, 110])), font=pick(rng, FONTS),
                   font_size=float(rng.uniform(6.5, 9.5) if difficulty == "normal" else rng.uniform(6, 8)),
                   grid=bool(rng.random() < 0.5), background=pick(rng, light), spines=bool(rng.random() < 0.7))


class Canvas:
    """A matplotlib Figure with its Agg canvas; `to_image()` renders and converts without a PNG round trip."""

    def __init__(self, style: ChartStyle):
        self.style = style
        self.rc = matplotlib.rc_context({"font.family": style.font, "font.size": style.font_size})
        self.rc.__enter__()
        self.fig = Figure(figsize=(style.width_in, style.height_in), dpi=style.dpi, facecolor=style.background)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_subplot()
        self.ax.set_facecolor(style.background)
        if not style.spines:
            self.ax.spines[["top", "right"]].set_visible(False)

    def to_image(self) -> Image.Image:
        try:
            self.fig.tight_layout()
            self.canvas.draw()
            return Image.fromarray(np.asarray(self.canvas.buffer_rgba())[..., :3].copy())
        finally:
            self.rc.__exit__(None, None, None)

    def box_px(self, artist) -> list[float]:
        """[x0, y0, x1, y1] of an artist in image pixels (origin top-left); valid after `to_image()`."""
        b = artist.get_window_extent(self.canvas.get_renderer())
        height = self.fig.bbox.height
        return [round(float(b.x0), 1), round(float(height - b.y1), 1), round(float(b.x1), 1),
                round(float(height - b.y0), 1)]


def _value_scale(rng: np.random.Generator, difficulty: str, decimals: bool,
                 labelled: bool) -> tuple[float, float, float]:
    """(axis top, tick step, value quantum): values are multiples of the quantum. Decimals come only with
    value labels; unlabelled values use a quantum of a tenth of a tick step, so the ticks make them readable."""
    if decimals:
        top = float(rng.choice([5, 10, 20]))
        return top, top / 5, 0.1
    top = float(rng.choice([10, 20, 50, 100] if difficulty == "easy" else [10, 20, 40, 50, 100, 200, 500, 1000]))
    step = top / 4 if top == 40 else top / 5
    return top, step, max(1.0, top / 100) if labelled else max(1.0, step / 10)


def _bar_colours(rng: np.random.Generator, n: int, difficulty: str) -> list[str]:
    if difficulty == "easy":
        return [PALETTE[0]] * n
    mode = rng.random()
    if mode < 0.5:
        return [pick(rng, PALETTE)] * n
    if mode < 0.8:
        start = int(rng.integers(len(PALETTE)))
        return [PALETTE[(start + i) % len(PALETTE)] for i in range(n)]
    rgb = rng.uniform(0.1, 0.75, 3)
    return ["#%02x%02x%02x" % tuple(int(255 * c) for c in rgb)] * n


def bar_chart(rng: np.random.Generator, difficulty: str, horizontal: bool | None = None):
    """Bars labelled A, B, C … on a value axis with labelled ticks; horizontal in ~25 % of normal/hard charts."""
    easy = difficulty == "easy"
    if horizontal is None:
        horizontal = (not easy) and rng.random() < 0.25
    low, high = {"easy": (3, 5), "normal": (3, 8), "hard": (5, 8)}[difficulty]
    n = int(rng.integers(low, high + 1))
    labels = list(string.ascii_uppercase[:n])
    show_values = easy or rng.random() < (0.4 if difficulty == "normal" else 0.1)
    decimals = (not easy) and show_values and rng.random() < 0.3
    top, step, quantum = _value_scale(rng, difficulty, decimals, show_values)
    values = [fmt_number_value(q * quantum) for q in rng.integers(max(1, int(top * 0.05 / quantum)),
                                                                       int(round(top / quantum)) + 1, n)]
    style = ChartStyle.draw(rng, difficulty)
    c = Canvas(style)
    ax = c.ax
    colours = _bar_colours(rng, n, difficulty)
    thickness = 0.6 if easy else float(rng.uniform(0.4, 0.85))
    edge = "black" if (not easy and rng.random() < 0.25) else None
    if horizontal:
        bars = ax.barh(labels, values, height=thickness, color=colours, edgecolor=edge, zorder=2)
        ax.invert_yaxis()  # A at the top, reading order
        ax.set_xlim(0, top * 1.12)
        ax.set_xticks(np.arange(0, top + step / 2, step))
    else:
        bars = ax.bar(labels, values, width=thickness, color=colours, edgecolor=edge, zorder=2)
        ax.set_ylim(0, top * 1.12)
        ax.set_yticks(np.arange(0, top + step / 2, step))
    if style.grid:
        ax.grid(axis="x" if horizontal else "y", alpha=0.45, zorder=0)
        ax.set_axisbelow(True)
    if show_values:
        ax.bar_label(bars, labels=[fmt_number(v) for v in values], fontsize=style.font_size, padding=2)
    title = pick(rng, TITLES) if easy or rng.random() < 0.85 else None
    if title:
        ax.set_title(title, fontsize=style.font_size + 2)
    axis_label = pick(rng, VALUE_AXIS) if (not easy and rng.random() < 0.5) else None
    if axis_label:
        (ax.set_xlabel if horizontal else ax.set_ylabel)(axis_label)
    image = c.to_image()

    data = dict(zip(labels, values))
    lines = [qa(pick(rng, VALUE_Q_HORIZONTAL if horizontal else VALUE_Q).format(b=b), data[b])
             for b in _strs(rng.choice(labels, size=min(3, n), replace=False))]
    if values.count(max(values)) == 1:
        lines.append(qa(pick(rng, MAX_Q_HORIZONTAL if horizontal else MAX_Q), labels[int(np.argmax(values))]))
    if values.count(min(values)) == 1:
        lines.append(qa(pick(rng, MIN_Q), labels[int(np.argmin(values))]))
    a, b = _strs(rng.choice(labels, size=2, replace=False))
    if data[a] != data[b]:
        lines.append(qa(pick(rng, COMPARE_Q).format(a=a, b=b), a if data[a] > data[b] else b))
        lines.append(qa(f"What is the difference between {a} and {b}?", abs(data[a] - data[b])))
    lines.append(qa(pick(rng, COUNT_Q), n, "exact"))
    if not easy and rng.random() < 0.5:
        lines.append(qa("What is the sum of all the bars?", sum(values)))
    if title and rng.random() < 0.3:
        lines.append(qa("What is the title of the chart?", title))
    facts = [f"a {'horizontal' if horizontal else 'vertical'} bar chart" + (f" titled {title}" if title else "")
             + f" with {n} bars labelled {labels[0]} to {labels[-1]}"]
    facts += [f"bar {lab} with a value of {fmt_number(v)}" for lab, v in data.items()]
    scene = {"kind": "hbar" if horizontal else "bar", "title": title, "data": data, "orientation":
             "horizontal" if horizontal else "vertical", "value_labels": show_values, "axis_label": axis_label,
             "value_axis": {"min": 0.0, "max": top * 1.12, "tick_step": step},
             "plot_px": c.box_px(ax.patch), "bars_px": [c.box_px(bar) for bar in bars], "colours": colours,
             "caption_facts": facts}
    return image, scene, lines


def fmt_number_value(value: float) -> float | int:
    """A JSON-friendly number: int when whole, else rounded to one decimal."""
    value = round(float(value), 1)
    return int(value) if value == int(value) else value


def _strs(values) -> list[str]:
    return [str(v) for v in values]


def grouped_bar(rng: np.random.Generator, difficulty: str):
    """Categories A, B, C … with 2–3 coloured series and a legend."""
    groups = _strs(rng.choice(SERIES, size=int(rng.integers(2, 4)), replace=False))
    cats = list(string.ascii_uppercase[: int(rng.integers(3, 6))])
    top = float(rng.choice([10, 20, 50]))
    data = {g: [int(v) for v in rng.integers(1, int(top) + 1, len(cats))] for g in groups}
    style = ChartStyle.draw(rng, difficulty)
    c = Canvas(style)
    ax = c.ax
    x = np.arange(len(cats))
    width = 0.8 / len(groups)
    start = int(rng.integers(len(PALETTE)))
    labelled = difficulty != "hard" and rng.random() < 0.6
    for k, g in enumerate(groups):
        bars = ax.bar(x + (k - (len(groups) - 1) / 2) * width, data[g], width, label=g,
                      color=PALETTE[(start + 2 * k) % len(PALETTE)], zorder=2)
        if labelled:
            ax.bar_label(bars, fontsize=style.font_size - 1, padding=1)
    ax.set_xticks(x, cats)
    ax.set_ylim(0, top * 1.2)
    ax.set_yticks(np.arange(0, top + 1, top / 5))
    if style.grid:
        ax.grid(axis="y", alpha=0.45, zorder=0)
    ax.legend(fontsize=style.font_size - 1, ncols=len(groups), loc="upper center",  # below the axis, off the bars
              bbox_to_anchor=(0.5, -0.1), frameon=False)
    title = pick(rng, TITLES)
    ax.set_title(title, fontsize=style.font_size + 2)
    image = c.to_image()

    cat, g = pick(rng, cats), pick(rng, groups)
    i = cats.index(cat)
    lines = [qa(f"What is the value of {cat} for {g}?", data[g][i]),
             qa(f"What is the total of {cat} across all series?", sum(data[s][i] for s in groups)),
             qa("How many series are shown in the legend?", len(groups), "exact")]
    column = [data[s][i] for s in groups]
    if column.count(max(column)) == 1:
        lines.append(qa(f"Which series has the highest value at {cat}?", groups[int(np.argmax(column))]))
    facts = [f"a grouped bar chart titled {title} comparing {', '.join(groups)} for categories {', '.join(cats)}"]
    facts += [f"the {s} series with {', '.join(f'{k} {v}' for k, v in zip(cats, data[s]))}" for s in groups]
    return image, {"kind": "grouped_bar", "title": title, "data": data, "categories": cats, "value_labels": labelled,
                   "caption_facts": facts}, lines


def line_chart(rng: np.random.Generator, difficulty: str):
    """A yearly series with markers; point values are written next to the markers in most charts."""
    n = int(rng.integers(4, 9))
    start = int(rng.integers(1995, 2018))
    years = [start + k for k in range(n)]
    top = float(rng.choice([20, 50, 100]))
    values = [int(v) for v in rng.integers(1, int(top) + 1, n)]
    style = ChartStyle.draw(rng, difficulty)
    c = Canvas(style)
    ax = c.ax
    ax.plot(years, values, marker=pick(rng, ["o", "s", "D", "^"]), color=pick(rng, PALETTE),
            linestyle=pick(rng, ["-", "-", "--"]), linewidth=float(rng.uniform(1.2, 2.5)))
    labelled = difficulty == "easy" or rng.random() < (0.7 if difficulty == "normal" else 0.3)
    if labelled:
        for x, y in zip(years, values):
            ax.annotate(str(y), (x, y), textcoords="offset points", xytext=(0, 5), ha="center",
                        fontsize=style.font_size - 1)
    ax.set_xticks(years, [str(y) for y in years], fontsize=style.font_size - 1, rotation=45 if n > 6 else 0)
    ax.set_ylim(0, top * 1.15)
    ax.set_yticks(np.arange(0, top + 1, top / 5))
    if style.grid:
        ax.grid(alpha=0.45)
    title = pick(rng, TITLES)
    ax.set_title(title, fontsize=style.font_size + 2)
    image = c.to_image()

    y = int(rng.choice(years))
    data = {str(k): v for k, v in zip(years, values)}
    lines = [qa(f"What is the value in {y}?", values[years.index(y)])]
    if values.count(max(values)) == 1:
        lines.append(qa("In which year is the value highest?", str(years[int(np.argmax(values))])))
    if values.count(min(values)) == 1:
        lines.append(qa("In which year is the value lowest?", str(years[int(np.argmin(values))])))
    a, b = sorted(int(v) for v in rng.choice(years, size=2, replace=False))
    va, vb = values[years.index(a)], values[years.index(b)]
    lines.append(qa(f"By how much did the value change from {a} to {b}?", vb - va))
    lines.append(qa(f"Did the value increase from {a} to {b}?", "yes" if vb > va else "no"))
    facts = [f"a line chart titled {title} from {years[0]} to {years[-1]}"]
    facts += [f"a value of {v} in {k}" for k, v in data.items()]
    scene = {"kind": "line", "title": title, "data": data, "value_labels": labelled, "caption_facts": facts}
    return image, scene, lines


def pie_chart(rng: np.random.Generator, difficulty: str):
    """Slices named after cities with their percentage written on the label."""
    n = int(rng.integers(3, 7))
    cats = _strs(rng.choice(CITIES, size=n, replace=False))
    raw = rng.integers(5, 40, n).astype(float)
    shares = [int(v) for v in np.round(raw / raw.sum() * 100)]
    shares[-1] = 100 - sum(shares[:-1])
    if min(shares) <= 0:  # rounding can empty the last slice; give it one point from the largest
        shares[int(np.argmax(shares))] -= 1 - min(shares)
        shares[-1] = 1
    style = ChartStyle.draw(rng, difficulty)
    style = ChartStyle(**{**style.__dict__, "width_in": 3.4, "height_in": 3.0})
    c = Canvas(style)
    start = int(rng.integers(len(PALETTE)))
    c.ax.pie(shares, labels=[f"{name} {s}%" for name, s in zip(cats, shares)],
             colors=[PALETTE[(start + i) % len(PALETTE)] for i in range(n)], textprops={"fontsize": style.font_size},
             startangle=float(rng.uniform(0, 360)), wedgeprops={"edgecolor": "white"}, radius=1.0)
    c.ax.set_xlim(-1.9, 1.9)  # room for the labels, which tight_layout does not reserve
    c.ax.set_ylim(-1.3, 1.3)
    title = pick(rng, TITLES)
    c.ax.set_title(title, fontsize=style.font_size + 2)
    image = c.to_image()

    data = dict(zip(cats, shares))
    name = pick(rng, cats)
    lines = [qa(f"What share does {name} have?", data[name]), qa("How many slices does the pie have?", n, "exact")]
    if shares.count(max(shares)) == 1:
        lines.append(qa("Which category has the largest share?", cats[int(np.argmax(shares))]))
    if shares.count(min(shares)) == 1:
        lines.append(qa("Which category has the smallest share?", cats[int(np.argmin(shares))]))
    facts = [f"a pie chart titled {title} with {n} slices"] + [f"a {k} slice of {v}%" for k, v in data.items()]
    return image, {"kind": "pie", "title": title, "data": data, "caption_facts": facts}, lines


def scatter_chart(rng: np.random.Generator, difficulty: str):
    """Well-separated points (so the count is unambiguous) on a 0–10 grid."""
    n = int(rng.integers(4, 13 if difficulty != "hard" else 20))
    points: list[tuple[float, float]] = []
    while len(points) < n:
        p = (round(float(rng.uniform(0.5, 9.5)), 1), round(float(rng.uniform(0.5, 9.5)), 1))
        if all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 > 0.8 ** 2 for q in points):
            points.append(p)
    style = ChartStyle.draw(rng, difficulty)
    c = Canvas(style)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    c.ax.scatter(xs, ys, color=pick(rng, PALETTE), s=float(rng.uniform(14, 30)), zorder=2)
    c.ax.set_xlim(0, 10)
    c.ax.set_ylim(0, 10)
    if style.grid:
        c.ax.grid(alpha=0.45)
    xlabel, ylabel = _strs(rng.choice(["Height", "Weight", "Age", "Price", "Speed", "Size"], 2, replace=False))
    c.ax.set_xlabel(xlabel)
    c.ax.set_ylabel(ylabel)
    image = c.to_image()
    right = sum(x > 5 for x in xs)
    lines = [qa("How many points are in the scatter plot?", n, "exact"), qa("What is on the x-axis?", xlabel),
             qa("What is on the y-axis?", ylabel)]
    if all(abs(x - 5) > 0.3 for x in xs):  # only ask when no point sits near the divide
        lines.append(qa(f"How many points have {xlabel} greater than 5?", right, "exact"))
    facts = [f"a scatter plot of {ylabel} against {xlabel} with {n} points"]
    scene = {"kind": "scatter", "data": {"x": xs, "y": ys}, "axes": [xlabel, ylabel], "caption_facts": facts}
    return image, scene, lines


CHART_RENDERERS = {"bar": bar_chart, "hbar": lambda rng, d: bar_chart(rng, d, horizontal=True),
                   "grouped_bar": grouped_bar, "line": line_chart, "pie": pie_chart, "scatter": scatter_chart}

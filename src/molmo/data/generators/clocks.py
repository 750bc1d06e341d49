"""The `clocks` generator: analog clock and watch faces with exact times (PixMo-Clocks style).

Faces vary in dial shape (round, square, rounded, octagon), colours, numerals (arabic, roman, 12/3/6/9 only,
ticks only, none), hand styles (line, tapered, arrow; with counterweights), second hands, shadows, small
rotations, backgrounds (plain, gradient, noise, stripes), distractor shapes and watch straps. The hour hand
moves with the minutes (30·h + 0.5·m degrees). Answers parse with the clock metric
(`molmo.eval.metrics.clock`), e.g. "The time shown is 3:07." or "3:07".

    item = generate_one("clocks", seed=0, index=5)        # item.scene["hour"], ["minute"], ["second"]
    molmo data generate clocks --n 1000 --out data/clocks
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from molmo.data.generators.base import GeneratedImage, register
from molmo.data.generators.scenes import background

SS = 2  # drawn at 2x and downsampled for antialiasing
ROMAN = ["XII", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI"]
DIALS = ("round", "round", "round", "square", "rounded", "octagon")
NUMERALS = ("arabic", "arabic", "roman", "quarters", "ticks", "none")
HANDS = ("line", "tapered", "arrow")
QUESTIONS = ["What time is being shown?", "What time does the clock show?", "What time is it?",
             "Read the time on this clock.", "What time is displayed on the clock?", "Tell me the time shown.",
             "What is the time on this watch?", "What time does this clock read?", "Can you read the clock?",
             "What time is shown on the clock face?", "According to the clock, what time is it?"]
SHORT_QUESTIONS = ["What time is shown? Answer with H:MM.", "Give the time on the clock as H:MM.",
                   "Time shown (H:MM)?", "Read the clock and answer in H:MM format."]
ANSWERS = ["The time shown is {t}.", "The clock shows {t}.", "It is {t}.", "The time is {t}.", "{t}"]
DIFFICULTY = {
    "easy": dict(dials=("round",), numerals=("arabic",), hands=("line", "tapered"), second=0.0, rotate=0,
                 backgrounds=("plain",), distractors=0, strap=0.0),
    "normal": dict(dials=DIALS, numerals=NUMERALS, hands=HANDS, second=0.4, rotate=8,
                   backgrounds=("plain", "gradient", "noise"), distractors=2, strap=0.15),
    "hard": dict(dials=DIALS, numerals=NUMERALS, hands=HANDS, second=0.6, rotate=15,
                 backgrounds=("plain", "gradient", "noise", "stripes"), distractors=4, strap=0.3),
}


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _dial_polygon(kind: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    n, off = {"square": (4, math.pi / 4), "octagon": (8, math.pi / 8)}.get(kind, (64, 0.0))
    rr = r * (1.3 if kind == "square" else 1.08 if kind == "octagon" else 1.0)
    return [(cx + rr * math.cos(off + 2 * math.pi * k / n), cy + rr * math.sin(off + 2 * math.pi * k / n))
            for k in range(n)]


def hand_angles(hour: int, minute: int, second: int) -> tuple[float, float, float]:
    """Clockwise degrees from 12 o'clock of the hour, minute and second hands."""
    return (30 * (hour % 12) + 0.5 * minute + second / 120, 6 * minute + 0.1 * second, 6 * second)


def _hand(draw: ImageDraw.ImageDraw, cx, cy, angle_deg, length, width, colour, style, tail=0.0) -> None:
    a = math.radians(angle_deg)
    dx, dy = math.sin(a), -math.cos(a)
    tip = (cx + dx * length, cy + dy * length)
    back = (cx - dx * length * tail, cy - dy * length * tail)
    px, py = -dy, dx
    if style == "line":
        draw.line([back, tip], fill=colour, width=max(1, int(width)))
    elif style == "tapered":
        w = width * 0.9
        draw.polygon([(back[0] + px * w, back[1] + py * w), (tip[0], tip[1]), (back[0] - px * w, back[1] - py * w)],
                     fill=colour)
    else:  # arrow: shaft plus a head
        draw.line([back, tip], fill=colour, width=max(1, int(width * 0.7)))
        hx, hy = cx + dx * length * 0.8, cy + dy * length * 0.8
        w = width * 1.6
        draw.polygon([(hx + px * w, hy + py * w), tip, (hx - px * w, hy - py * w)], fill=colour)


def render_clock(rng: np.random.Generator, hour: int, minute: int, second: int, difficulty: str = "normal",
                 size: int | None = None) -> tuple[Image.Image, dict]:
    d = DIFFICULTY[difficulty]
    side = size or int(rng.integers(224, 449))
    w, h = side, int(side * rng.uniform(0.8, 1.0))
    img = background(rng, str(rng.choice(d["backgrounds"])), w * SS, h * SS)
    draw = ImageDraw.Draw(img)
    r = min(w, h) * SS * rng.uniform(0.3, 0.42)
    cx = w * SS / 2 + rng.uniform(-0.08, 0.08) * w * SS
    cy = h * SS / 2 + rng.uniform(-0.06, 0.06) * h * SS
    dial, numerals, hand_style = (str(rng.choice(d[k])) for k in ("dials", "numerals", "hands"))
    face = tuple(int(v) for v in (rng.integers(215, 256, 3) if rng.random() < 0.75 else rng.integers(10, 70, 3)))
    ink = (20, 20, 20) if sum(face) > 380 else (235, 235, 235)
    rim = tuple(int(v) for v in rng.integers(0, 200, 3))
    for k in range(int(rng.integers(0, d["distractors"] + 1))):  # distractor shapes behind the clock
        x, y, s = rng.uniform(0, w * SS), rng.uniform(0, h * SS), rng.uniform(10, 40) * SS
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)([x, y, x + s, y + s], fill=colour)
    watch = rng.random() < d["strap"]
    if watch:  # a strap above and below the case
        strap = tuple(int(v) for v in rng.integers(20, 160, 3))
        draw.rectangle([cx - r * 0.55, 0, cx + r * 0.55, h * SS], fill=strap)
    if rng.random() < 0.5:  # drop shadow
        sh = Image.new("L", img.size, 0)
        off = r * 0.06
        ImageDraw.Draw(sh).polygon([(x + off, y + off) for x, y in _dial_polygon(dial, cx, cy, r * 1.06)], fill=110)
        img.paste((40, 40, 40), mask=sh.filter(ImageFilter.GaussianBlur(r * 0.04)))
    draw.polygon(_dial_polygon(dial, cx, cy, r * 1.06), fill=rim)
    draw.polygon(_dial_polygon(dial, cx, cy, r), fill=face)
    for k in range(60):  # ticks
        if numerals == "none" and k % 5:
            continue
        a = math.radians(6 * k)
        major = k % 5 == 0
        r0 = r * (0.86 if major else 0.92)
        draw.line([(cx + math.sin(a) * r0, cy - math.cos(a) * r0), (cx + math.sin(a) * r * 0.97, cy - math.cos(a) * r * 0.97)],
                  fill=ink, width=max(1, int(r * (0.025 if major else 0.01))))
    font = _font(int(r * (0.2 if numerals == "roman" else 0.24)))
    for k in range(12):
        if numerals in ("ticks", "none") or (numerals == "quarters" and k % 3):
            continue
        text = ROMAN[k] if numerals == "roman" else str(12 if k == 0 else k)
        a = math.radians(30 * k)
        draw.text((cx + math.sin(a) * r * 0.7, cy - math.cos(a) * r * 0.7), text, fill=ink, font=font, anchor="mm")
    ha, ma, sa = hand_angles(hour, minute, second)
    hand_colour = ink if rng.random() < 0.7 else tuple(int(v) for v in rng.integers(0, 120, 3))
    tail = 0.15 if rng.random() < 0.5 else 0.0
    _hand(draw, cx, cy, ha, r * 0.5, r * 0.06, hand_colour, hand_style, tail)
    _hand(draw, cx, cy, ma, r * 0.8, r * 0.04, hand_colour, hand_style, tail)
    show_seconds = rng.random() < d["second"]
    if show_seconds:
        _hand(draw, cx, cy, sa, r * 0.85, r * 0.012, (200, 20, 20), "line", 0.2)
    draw.ellipse([cx - r * 0.05, cy - r * 0.05, cx + r * 0.05, cy + r * 0.05], fill=hand_colour)
    angle = float(rng.uniform(-d["rotate"], d["rotate"])) if d["rotate"] else 0.0
    if angle:
        img = img.rotate(angle, resample=Image.BICUBIC, center=(cx, cy), fillcolor=tuple(int(v) for v in img.getpixel((1, 1))))
    img = img.resize((w, h), Image.LANCZOS)
    scene = {"generator": "clocks", "hour": hour, "minute": minute, "second": second, "shows_seconds": show_seconds,
             "dial": dial, "numerals": numerals, "hands": hand_style, "rotation": angle,
             "centre": [cx / SS, cy / SS], "radius": r / SS, "size": [w, h], "watch": watch}
    return img, scene


def time_text(hour: int, minute: int, second: int | None = None) -> str:
    return f"{hour}:{minute:02d}" + (f":{second:02d}" if second is not None else "")


@register("clocks")
def generate_clock(rng: np.random.Generator, index: int, difficulty: str = "normal",
                   size: int | None = None) -> GeneratedImage:
    hour, minute, second = int(rng.integers(1, 13)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    img, scene = render_clock(rng, hour, minute, second, difficulty, size)
    t = time_text(hour, minute)
    lines = [{"question": str(rng.choice(QUESTIONS)), "answer": str(rng.choice(ANSWERS)).format(t=t), "metric": "clock"},
             {"question": str(rng.choice(SHORT_QUESTIONS)), "answer": t, "metric": "clock"}]
    if scene["shows_seconds"] and rng.random() < 0.5:
        lines.append({"question": "What time is shown, including seconds?",
                      "answer": f"The time shown is {time_text(hour, minute, second)}.", "metric": "clock"})
    lines.append({"question": str(rng.choice(["What hour is it on the clock?", "Which hour does the clock show?"])),
                  "answer": str(hour), "metric": "exact"})
    kind = "watch" if scene["watch"] else "clock"
    numerals = {"arabic": "arabic numerals", "roman": "roman numerals", "quarters": "numerals at 12, 3, 6 and 9",
                "ticks": "tick marks and no numerals", "none": "a plain face"}[scene["numerals"]]
    scene["caption_facts"] = [f"an analog {scene['dial']} {kind} with {numerals}",
                              f"the clock shows {t}" + (" with a red second hand" if scene["shows_seconds"] else "")]
    return GeneratedImage(image=img, annotations=lines, scene=scene)

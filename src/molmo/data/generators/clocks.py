"""The `clocks` generator: analog clock and watch faces with exact times (PixMo-Clocks style).

Faces vary in dial shape (round, square, rounded square, octagon), colours, numerals (arabic, roman, 12/3/6/9
only, ticks only, none), hand styles (line, tapered, arrow; with or without counterweights), second hands,
drop shadows, small rotations of the whole clock, backgrounds (plain, gradient, noise, wall stripes),
distractor shapes and text, and a wrist-watch variant with a strap. Everything is drawn at 2x and downsampled
(antialiasing). The hour hand moves with the minutes: 30·h + 0.5·m degrees clockwise from 12.

Every answer of a `"metric": "clock"` line starts with `H:MM` (e.g. "3:07" or "3:07 is the time shown."),
so it parses both with `molmo.eval.metrics.clock.clock_scores` and with the own-data eval runner, which
reads the reference time from the start of the answer. Answers never say AM/PM (the metric adds 12 on "PM").

    item = generate_one("clocks", seed=0, index=5, difficulty="easy")   # item.scene["hour"], ["minute"], ...
    molmo data generate clocks --n 1000 --out data/clocks
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from molmo.data.generators.base import GeneratedImage, register
from molmo.data.generators.scenes import background

SS = 2  # supersampling factor: drawn at 2x, downsampled with LANCZOS
ROMAN = ("XII", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI")
DIALS = ("round", "round", "round", "square", "rounded", "octagon")
NUMERALS = ("arabic", "arabic", "roman", "quarters", "ticks", "none")
HANDS = ("line", "tapered", "arrow")
FONTS = ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf")
BRANDS = ("QUARTZ", "MOLMO", "GENEVA", "TEMPUS", "AUTOMATIC", "WATERPROOF", "SWISS MADE", "ACME")
SIGN_WORDS = ("OFFICE", "Welcome", "EXIT", "Kitchen", "SALE", "Room 12", "Station", "Open", "CAFE", "No. 7")
QUESTIONS = ("What time is being shown?", "What time does the clock show?", "Read the time on this clock.",
             "What time is it?", "What time is displayed on the clock?", "Tell me the time shown.",
             "What time does this clock read?", "What time is shown on the clock face?",
             "According to the clock, what time is it?", "Can you tell what time it is from the clock?")
WATCH_QUESTIONS = ("What time is it on this watch?", "What time does the watch show?",
                   "Read the time on the wristwatch.")
SHORT_QUESTIONS = ("What time is shown? Answer with H:MM.", "Give the time on the clock as H:MM.",
                   "Read the clock and answer in H:MM format.", "What time is it? Answer with H:MM.")
ANSWERS = ("{t}", "{t}", "{t} is the time shown.", "{t} is the time on the clock.", "{t} is what the clock reads.")
HOUR_WORDS = ("twelve", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven")


@dataclass(frozen=True)
class ClockDifficulty:
    """Which styles and how much clutter one difficulty level samples from."""

    dials: tuple[str, ...]
    numerals: tuple[str, ...]
    hands: tuple[str, ...]
    radius: tuple[float, float]  # dial radius as a fraction of the short image side
    second_hand: float  # probability of a second hand
    max_rotation: float  # degrees, the whole clock turns by uniform(-max, max)
    backgrounds: tuple[str, ...]
    max_distractors: int  # shapes and words on the background
    watch: float  # probability of the wrist-watch variant
    shadow: float
    dark_face: float  # probability of a dark face with light ink


DIFFICULTIES = {
    "easy": ClockDifficulty(dials=("round",), numerals=("arabic",), hands=("line", "tapered"), radius=(0.4, 0.45),
                            second_hand=0.0, max_rotation=0.0, backgrounds=("plain",), max_distractors=0, watch=0.0,
                            shadow=0.0, dark_face=0.0),
    "normal": ClockDifficulty(dials=DIALS, numerals=NUMERALS, hands=HANDS, radius=(0.3, 0.42), second_hand=0.4,
                              max_rotation=8.0, backgrounds=("plain", "gradient", "noise", "stripes"),
                              max_distractors=3, watch=0.15, shadow=0.5, dark_face=0.2),
    "hard": ClockDifficulty(dials=DIALS, numerals=NUMERALS, hands=HANDS, radius=(0.22, 0.38), second_hand=0.6,
                            max_rotation=15.0, backgrounds=("plain", "gradient", "noise", "stripes"),
                            max_distractors=6, watch=0.3, shadow=0.6, dark_face=0.3),
}


def hand_angles(hour: int, minute: int, second: int = 0) -> tuple[float, float, float]:
    """Clockwise degrees from 12 o'clock of the hour, minute and second hands."""
    return 30 * (hour % 12) + 0.5 * minute + second / 120, 6 * minute + 0.1 * second, 6.0 * second


def time_text(hour: int, minute: int, second: int | None = None) -> str:
    return f"{hour}:{minute:02d}" + (f":{second:02d}" if second is not None else "")


@lru_cache(maxsize=64)
def _font(name: str, size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.truetype(name, size)
    except OSError:  # font not installed: Pillow's scalable default
        return ImageFont.load_default(size=size)


def _rgb(values) -> tuple[int, int, int]:
    return tuple(int(v) for v in values)


def dial_polygon(kind: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Outline of a dial of 'radius' r (the inscribed circle for square shapes)."""
    if kind == "round":
        return [(cx + r * math.cos(2 * math.pi * k / 96), cy + r * math.sin(2 * math.pi * k / 96)) for k in range(96)]
    if kind == "octagon":
        rr = r / math.cos(math.pi / 8)
        return [(cx + rr * math.cos(math.pi / 8 + math.pi * k / 4), cy + rr * math.sin(math.pi / 8 + math.pi * k / 4))
                for k in range(8)]
    if kind in ("square", "rounded"):
        half, corner = r * 1.05, (r * 0.35 if kind == "rounded" else 0.0)
        pts = []
        for sx, sy, start in ((1, 1, 0), (-1, 1, 90), (-1, -1, 180), (1, -1, 270)):  # corner centres, clockwise
            ccx, ccy = cx + sx * (half - corner), cy + sy * (half - corner)
            for j in range(9):
                a = math.radians(start + 90 * j / 8)
                pts.append((ccx + corner * math.cos(a), ccy + corner * math.sin(a)))
        return pts
    raise ValueError(f"unknown dial {kind!r}; expected one of {sorted(set(DIALS))}")


def _unit(angle_deg: float) -> tuple[float, float]:
    a = math.radians(angle_deg)
    return math.sin(a), -math.cos(a)  # screen coordinates: y grows downwards, 0 degrees = 12 o'clock


def draw_hand(draw: ImageDraw.ImageDraw, cx: float, cy: float, angle_deg: float, length: float, width: float,
              colour, style: str, tail: float = 0.0, counterweight: bool = False) -> None:
    """One hand from the centre towards angle_deg; `tail` (fraction of length) sticks out behind the centre."""
    dx, dy = _unit(angle_deg)
    px, py = -dy, dx
    tip = (cx + dx * length, cy + dy * length)
    back = (cx - dx * length * tail, cy - dy * length * tail)
    if style == "line":
        draw.line([back, tip], fill=colour, width=max(1, round(width)))
    elif style == "tapered":  # wide at the centre, narrow at the tip
        w, wt = width * 0.9, width * 0.2
        draw.polygon([(back[0] + px * w * 0.6, back[1] + py * w * 0.6), (cx + px * w, cy + py * w),
                      (tip[0] + px * wt, tip[1] + py * wt), (tip[0] - px * wt, tip[1] - py * wt),
                      (cx - px * w, cy - py * w), (back[0] - px * w * 0.6, back[1] - py * w * 0.6)], fill=colour)
    elif style == "arrow":  # a shaft and a triangular head
        head = (cx + dx * length * 0.78, cy + dy * length * 0.78)
        draw.line([back, head], fill=colour, width=max(1, round(width * 0.7)))
        w = width * 1.5
        draw.polygon([(head[0] + px * w, head[1] + py * w), tip, (head[0] - px * w, head[1] - py * w)], fill=colour)
    else:
        raise ValueError(f"unknown hand style {style!r}; expected one of {HANDS}")
    if counterweight and tail > 0:
        rw = width * 1.3
        draw.ellipse([back[0] - rw, back[1] - rw, back[0] + rw, back[1] + rw], fill=colour)


def sample_style(rng: np.random.Generator, difficulty: str = "normal") -> dict:
    """All random style choices of one clock (JSON-serialisable)."""
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"unknown difficulty {difficulty!r}; expected one of {list(DIFFICULTIES)}")
    d = DIFFICULTIES[difficulty]
    dark = rng.random() < d.dark_face
    face = _rgb(rng.integers(10, 60, 3)) if dark else _rgb(rng.integers(220, 256, 3))
    ink = (235, 235, 230) if dark else (20, 20, 20)
    hand_colour = ink
    if not dark and rng.random() < 0.3:  # dark coloured hands on a light face only, so they stay readable
        hand_colour = _rgb(rng.integers(0, 90, 3))
    tail = float(rng.choice([0.0, 0.15, 0.22]))
    return {
        "dial": str(rng.choice(d.dials)), "numerals": str(rng.choice(d.numerals)), "hands": str(rng.choice(d.hands)),
        "face": face, "ink": ink, "hand_colour": hand_colour, "rim": _rgb(rng.integers(0, 200, 3)),
        "rim_width": float(rng.uniform(0.03, 0.1)), "tail": tail,
        "counterweight": bool(tail > 0 and rng.random() < 0.5),
        "second_hand": bool(rng.random() < d.second_hand),
        "second_colour": _rgb((200, 25, 25) if rng.random() < 0.7 else rng.integers(0, 200, 3)),
        "minute_ticks": bool(rng.random() < 0.75), "font": str(rng.choice(FONTS)),
        "brand": str(rng.choice(BRANDS)) if rng.random() < 0.35 and difficulty != "easy" else None,
        "shadow": bool(rng.random() < d.shadow), "watch": bool(rng.random() < d.watch),
        "strap": _rgb(rng.integers(20, 170, 3)),
        "rotation": float(rng.uniform(-d.max_rotation, d.max_rotation)) if d.max_rotation else 0.0,
        "background": str(rng.choice(d.backgrounds)),
    }


def _draw_face(draw: ImageDraw.ImageDraw, style: dict, cx: float, cy: float, r: float,
               hour: int, minute: int, second: int) -> None:
    """Case, dial, ticks, numerals and hands (2x pixel units)."""
    draw.polygon(dial_polygon(style["dial"], cx, cy, r * (1 + style["rim_width"])), fill=style["rim"])
    draw.polygon(dial_polygon(style["dial"], cx, cy, r), fill=style["face"])
    ink, numerals = style["ink"], style["numerals"]
    for k in range(60):
        major = k % 5 == 0
        if not major and not style["minute_ticks"]:
            continue
        dx, dy = _unit(6 * k)
        r0 = r * (0.84 if major and numerals in ("ticks", "none") else 0.88 if major else 0.92)
        draw.line([(cx + dx * r0, cy + dy * r0), (cx + dx * r * 0.97, cy + dy * r * 0.97)], fill=ink,
                  width=max(1, round(r * (0.03 if major else 0.012))))
    if numerals in ("arabic", "roman", "quarters"):
        font = _font(style["font"], max(8, round(r * (0.17 if numerals == "roman" else 0.22))))
        for k in range(12):
            if numerals == "quarters" and k % 3:
                continue
            text = ROMAN[k] if numerals == "roman" else str(12 if k == 0 else k)
            dx, dy = _unit(30 * k)
            draw.text((cx + dx * r * 0.7, cy + dy * r * 0.7), text, fill=ink, font=font, anchor="mm")
    if style["brand"]:
        draw.text((cx, cy - r * 0.35), style["brand"], fill=ink, font=_font(style["font"], max(6, round(r * 0.08))),
                  anchor="mm")
    ha, ma, sa = hand_angles(hour, minute, second)
    colour, kind, tail, cw = style["hand_colour"], style["hands"], style["tail"], style["counterweight"]
    draw_hand(draw, cx, cy, ha, r * 0.5, r * 0.065, colour, kind, tail, cw)
    draw_hand(draw, cx, cy, ma, r * 0.8, r * 0.04, colour, kind, tail, cw)
    if style["second_hand"]:
        draw_hand(draw, cx, cy, sa, r * 0.86, r * 0.012, style["second_colour"], "line", 0.22,
                  counterweight=bool(cw))
    hub = r * 0.055
    draw.ellipse([cx - hub, cy - hub, cx + hub, cy + hub], fill=style["second_colour"] if style["second_hand"] else colour)


def _draw_strap(draw: ImageDraw.ImageDraw, style: dict, cx: float, cy: float, r: float, height: float) -> None:
    """A wrist strap through the case (top to bottom of the layer), lugs and a crown at 3 o'clock."""
    half = r * 0.55
    draw.rectangle([cx - half, cy - height, cx + half, cy + height], fill=style["strap"])
    darker = _rgb(np.array(style["strap"]) * 0.6)
    for y in np.arange(cy + r * 1.6, cy + height, r * 0.35):  # buckle holes on the lower strap
        hole = r * 0.04
        draw.ellipse([cx - hole, y - hole, cx + hole, y + hole], fill=darker)
    lug = r * 0.12
    draw.rectangle([cx - half - lug * 0.3, cy - r * 1.25, cx + half + lug * 0.3, cy + r * 1.25], fill=style["rim"])
    cr = r * 0.09
    draw.rectangle([cx + r * 1.02, cy - cr, cx + r * 1.02 + cr * 1.6, cy + cr], fill=style["rim"])


def render_clock(rng: np.random.Generator, hour: int, minute: int, second: int, style: dict,
                 size: tuple[int, int], radius_fraction: float, distractors: int = 0) -> tuple[Image.Image, dict]:
    """Draw one clock showing hour:minute:second with the given style on a `size` (w, h) image."""
    if not (1 <= hour <= 12 and 0 <= minute <= 59 and 0 <= second <= 59):
        raise ValueError(f"invalid time {hour}:{minute:02d}:{second:02d}; need hour 1-12, minute/second 0-59")
    w, h = size
    W, H = w * SS, h * SS
    img = background(rng, style["background"], W, H).convert("RGBA")
    bg_draw = ImageDraw.Draw(img)
    words = []
    for _ in range(distractors):  # shapes and signs on the wall; the clock is drawn on top
        x, y, s = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(0.04, 0.12) * min(W, H)
        colour = _rgb(rng.integers(0, 256, 3))
        if rng.random() < 0.4:
            word = str(rng.choice(SIGN_WORDS))
            words.append(word)
            bg_draw.text((x, y), word, fill=colour, font=_font(str(rng.choice(FONTS)), max(8, round(s * 0.6))))
        elif rng.random() < 0.5:
            bg_draw.rectangle([x, y, x + s, y + s * rng.uniform(0.5, 1.5)], fill=colour)
        else:
            bg_draw.ellipse([x, y, x + s, y + s], fill=colour)
    r = min(W, H) * radius_fraction * (0.75 if style["watch"] else 1.0)
    cx = W / 2 + rng.uniform(-1, 1) * max(0.0, W / 2 - r * 1.2) * 0.5
    cy = H / 2 + rng.uniform(-1, 1) * max(0.0, H / 2 - r * 1.2) * 0.5
    layer = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if style["watch"]:
        _draw_strap(draw, style, cx, cy, r, height=2 * max(W, H))
    _draw_face(draw, style, cx, cy, r, hour, minute, second)
    if style["rotation"]:
        layer = layer.rotate(style["rotation"], resample=Image.BICUBIC, center=(cx, cy))
    if style["shadow"]:  # the layer's silhouette, blurred and offset down-right
        off = round(r * 0.06)
        alpha = layer.getchannel("A").point(lambda v: v * 0.45).filter(ImageFilter.GaussianBlur(r * 0.04))
        shadow = Image.new("RGBA", (W, H), (20, 20, 20, 0))
        shadow.putalpha(alpha)
        img.alpha_composite(shadow, (off, off))
    img.alpha_composite(layer)
    img = img.convert("RGB").resize((w, h), Image.LANCZOS)
    scene = {"generator": "clocks", "hour": hour, "minute": minute, "second": second,
             "shows_seconds": style["second_hand"], "centre": [cx / SS, cy / SS], "radius": r / SS,
             "size": [w, h], "distractor_words": words, **{k: v for k, v in style.items() if k != "shows_seconds"}}
    return img, scene


def caption_facts(scene: dict) -> list[str]:
    kind = "wristwatch" if scene["watch"] else "clock"
    dial = {"round": "round", "square": "square", "rounded": "rounded-square", "octagon": "octagonal"}[scene["dial"]]
    tone = "dark" if sum(scene["face"]) < 300 else "light"
    numerals = {"arabic": "arabic numerals", "roman": "roman numerals", "quarters": "numerals at 12, 3, 6 and 9",
                "ticks": "tick marks instead of numerals", "none": "no numerals"}[scene["numerals"]]
    t = time_text(scene["hour"], scene["minute"])
    article = "an" if dial[0] in "aeiou" else "a"
    m = scene["minute"]
    facts = [f"{article} {dial} analog {kind} with a {tone} face and {numerals} showing {t}",
             f"the hour hand points {'at' if m < 5 else 'past'} the {HOUR_WORDS[scene['hour'] % 12]} "
             f"and the minute hand at {m} minute{'' if m == 1 else 's'}"]
    if scene["shows_seconds"]:
        facts.append(f"a thin second hand at {scene['second']} seconds")
    if scene["brand"]:
        facts.append(f"the word \"{scene['brand']}\" is printed on the dial")
    if scene["distractor_words"]:
        facts.append("signs in the background read " + ", ".join(f'"{w}"' for w in scene["distractor_words"]))
    return facts


@register("clocks")
def generate_clock(rng: np.random.Generator, index: int, difficulty: str = "normal",
                   size: int | tuple[int, int] | None = None) -> GeneratedImage:
    """One clock image with its QA lines; `size` is a side length or (w, h), default random 224-448 px."""
    style = sample_style(rng, difficulty)
    d = DIFFICULTIES[difficulty]
    if size is None:
        side = int(rng.integers(224, 449))
        size = (side, int(side * rng.uniform(0.8, 1.0))) if rng.random() < 0.5 else (int(side * rng.uniform(0.8, 1.0)), side)
    elif isinstance(size, int):
        size = (size, size)
    if min(size) < 32:
        raise ValueError(f"clock images need at least 32 px per side, got {size}")
    hour, minute, second = int(rng.integers(1, 13)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    n_distractors = int(rng.integers(0, d.max_distractors + 1))
    img, scene = render_clock(rng, hour, minute, second, style, tuple(size),
                              float(rng.uniform(*d.radius)), n_distractors)
    t = time_text(hour, minute)
    questions = QUESTIONS + WATCH_QUESTIONS if scene["watch"] else QUESTIONS
    lines = [{"question": str(rng.choice(questions)), "answer": str(rng.choice(ANSWERS)).format(t=t), "metric": "clock"},
             {"question": str(rng.choice(SHORT_QUESTIONS)), "answer": t, "metric": "clock"}]
    if scene["shows_seconds"] and rng.random() < 0.5:
        lines.append({"question": "What time is shown, including the seconds? Answer with H:MM:SS.",
                      "answer": time_text(hour, minute, second), "metric": "clock"})
    if rng.random() < 0.5:
        lines.append({"question": str(rng.choice(["Which hour does the clock show?", "What hour is it on the clock?"])),
                      "answer": str(hour), "metric": "exact"})
    scene["difficulty"] = difficulty
    scene["caption_facts"] = caption_facts(scene)
    return GeneratedImage(image=img, annotations=lines, scene=scene)

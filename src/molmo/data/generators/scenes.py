"""The `points` generator: scenes of coloured shapes with exact instance centres and visible masks, for
pointing, point-then-count and counting questions (PixMo-Points / PixMo-Count style), 0–10 targets per image.

Each image has one target kind (e.g. "red circles") drawn a uniform number of times in 0..max_count, plus
distractors that do not match it; annotations point to / count the target and a few other expressions of
the scene (by colour, shape, colour+shape, size, half of the image), including absent ones. With
`count_questions="target"` the one "How many" question asks about the target group (answers uniform in 0..10).
With `groups=2` (or more) the scene holds that many such groups, each its own colour and shape, and the target
is one of them at random, so the total number of objects does not give the target's count; with
`group_by="colour"` the groups share one shape and differ only in colour, so the colour word alone picks the group.
`colours` and `shapes` limit what is drawn; `difficulty="plain"` with them and `size=(224, 224)` draws the
grounding check's images (0-4 red, blue and green circles on white, no distractors).

    item = generate_one("points", seed=0, index=3)                 # GeneratedImage
    masks = item.scene["_masks"]                                    # [N, H, W] bool, visible part per object
    molmo data generate points --n 1000 --out data/points
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from molmo.data.generators.base import GeneratedImage, register

COLOURS = {"red": (220, 30, 35), "green": (30, 160, 50), "blue": (35, 75, 215), "yellow": (240, 205, 20),
           "purple": (130, 50, 170), "orange": (245, 130, 20), "black": (20, 20, 20), "white": (250, 250, 250),
           "pink": (245, 120, 180), "brown": (125, 75, 35), "gray": (128, 128, 128)}
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "diamond", "cross")
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars",
          "hexagon": "hexagons", "diamond": "diamonds", "cross": "crosses"}
GROUP_BY = ("colour_and_shape", "colour")  # what tells a scene's counted groups apart
FILLS = ("solid", "solid", "solid", "striped", "dotted", "outline")
DIFFICULTY = {  # objects besides the targets, radius range (fraction of the short side), min centre gap
    "easy": dict(distractors=(1, 4), radius=(0.06, 0.09), gap=1.15, backgrounds=("plain",), fills=("solid",)),
    "normal": dict(distractors=(1, 7), radius=(0.035, 0.08), gap=1.0,
                   backgrounds=("plain", "gradient", "noise"), fills=FILLS),
    "hard": dict(distractors=(3, 12), radius=(0.025, 0.07), gap=0.8,
                 backgrounds=("plain", "gradient", "noise", "stripes"), fills=FILLS),
    # the grounding check's circles: no distractors, one size, white, well apart
    "plain": dict(distractors=(0, 0), radius=(0.067, 0.067), gap=1.3, backgrounds=("white",), fills=("solid",)),
}
MIN_VISIBLE = 0.55  # objects less visible than this are removed from the scene


def shape_polygon(shape: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    def ring(n: int, radius: float, offset: float = 0.0) -> list[tuple[float, float]]:
        return [(cx + radius * math.cos(rot + offset + 2 * math.pi * k / n),
                 cy + radius * math.sin(rot + offset + 2 * math.pi * k / n)) for k in range(n)]

    if shape == "square":
        return ring(4, r * 1.15, math.pi / 4)
    if shape == "triangle":
        return ring(3, r * 1.2, -math.pi / 2)
    if shape == "hexagon":
        return ring(6, r)
    if shape == "diamond":
        c, s = math.cos(rot), math.sin(rot)
        pts = [(0.75 * r, 0), (0, 1.2 * r), (-0.75 * r, 0), (0, -1.2 * r)]
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]
    if shape == "star":
        outer, inner = ring(5, r * 1.2, -math.pi / 2), ring(5, r * 0.5, -math.pi / 2 + math.pi / 5)
        return [p for pair in zip(outer, inner) for p in pair]
    if shape == "cross":
        a, b = r * 0.38, r * 1.05
        pts = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]
        c, s = math.cos(rot), math.sin(rot)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]
    raise ValueError(f"unknown shape {shape!r}")


def draw_shape(draw: ImageDraw.ImageDraw, obj: dict, fill: Any, outline_width: int = 0) -> None:
    cx, cy, r = obj["cx"], obj["cy"], obj["r"]
    if obj["shape"] == "circle":
        box = [cx - r, cy - r, cx + r, cy + r]
        draw.ellipse(box, fill=None if outline_width else fill, outline=fill if outline_width else None,
                     width=outline_width or 1)
    else:
        poly = shape_polygon(obj["shape"], cx, cy, r, obj["rot"])
        if outline_width:
            draw.line(poly + [poly[0]], fill=fill, width=outline_width, joint="curve")
        else:
            draw.polygon(poly, fill=fill)


def background(rng: np.random.Generator, kind: str, w: int, h: int) -> Image.Image:
    if kind == "white":
        return Image.new("RGB", (w, h), (255, 255, 255))
    base = rng.integers(150, 256, 3)
    if kind == "plain":
        return Image.new("RGB", (w, h), tuple(int(v) for v in base))
    if kind == "gradient":
        other = rng.integers(120, 256, 3)
        t = np.linspace(0, 1, w if rng.random() < 0.5 else h)
        ramp = base[None] * (1 - t[:, None]) + other[None] * t[:, None]
        arr = np.broadcast_to(ramp[None], (h, w, 3)) if len(t) == w else np.broadcast_to(ramp[:, None], (h, w, 3))
        return Image.fromarray(arr.astype(np.uint8))
    if kind == "noise":  # smooth, photo-like blotches
        low = rng.normal(0, 14, (max(2, h // 32), max(2, w // 32), 1)) + rng.normal(0, 6, (max(2, h // 32), max(2, w // 32), 3))
        noise = np.asarray(Image.fromarray(np.clip(low + 128, 0, 255).astype(np.uint8)).resize((w, h), Image.BICUBIC))
        arr = np.clip(base[None, None] + (noise.astype(float) - 128), 0, 255)
        arr += rng.normal(0, 6, arr.shape)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    img = Image.new("RGB", (w, h), tuple(int(v) for v in base))  # stripes
    d = ImageDraw.Draw(img)
    step = int(rng.integers(12, 30))
    shade = tuple(int(v * 0.9) for v in base)
    for x in range(-h, w, step):
        d.line([(x, 0), (x + h, h)], fill=shade, width=step // 3)
    return img


def _colour_ok(colour: str, bg_mean: np.ndarray) -> bool:
    return float(np.abs(np.array(COLOURS[colour]) - bg_mean).sum()) > 120


def _place(rng, objs, w, h, r, gap) -> tuple[float, float] | None:
    for _ in range(60):
        cx, cy = rng.uniform(r + 2, w - r - 2), rng.uniform(r + 2, h - r - 2)
        if all(math.hypot(cx - o["cx"], cy - o["cy"]) > gap * (r + o["r"]) for o in objs):
            return cx, cy
    return None


def render(scene: dict, bg: Image.Image) -> tuple[Image.Image, np.ndarray]:
    """Draw the objects in order onto `bg`; returns the image and an instance map (0 = background)."""
    img = bg.copy()
    labels = Image.new("I", img.size, 0)
    draw, ldraw = ImageDraw.Draw(img), ImageDraw.Draw(labels)
    for k, o in enumerate(scene["objects"], 1):
        rgb = COLOURS[o["colour"]]
        if o["fill"] == "outline":
            width = max(3, int(o["r"] * 0.3))
            draw_shape(draw, o, rgb, width)
            draw_shape(ldraw, o, k)  # an outlined shape owns its inside too (points go to its centre)
            continue
        draw_shape(draw, o, rgb)
        draw_shape(ldraw, o, k)
        if o["fill"] in ("striped", "dotted"):
            tex = Image.new("L", img.size, 0)
            td = ImageDraw.Draw(tex)
            x0, y0, r = o["cx"] - o["r"] * 1.3, o["cy"] - o["r"] * 1.3, o["r"]
            if o["fill"] == "striped":
                for x in np.arange(x0, x0 + 2.6 * r, max(4, r / 3)):
                    td.line([(x, y0), (x + r, y0 + 2.6 * r)], fill=255, width=2)
            else:
                for x in np.arange(x0, x0 + 2.6 * r, max(5, r / 3)):
                    for y in np.arange(y0, y0 + 2.6 * r, max(5, r / 3)):
                        td.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=255)
            inside = Image.new("L", img.size, 0)
            draw_shape(ImageDraw.Draw(inside), o, 255)
            shade = tuple(int(c * 0.6) for c in rgb)
            img.paste(Image.new("RGB", img.size, shade), mask=Image.fromarray(
                (np.asarray(tex) & np.asarray(inside)).astype(np.uint8)))
    return img, np.asarray(labels, dtype=np.int32)


def centre_point(mask: np.ndarray) -> tuple[float, float]:
    """The visible centroid if it lies on the object, else the object pixel farthest from its border."""
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    if mask[int(round(cy)), int(round(cx))]:
        return float(cx), float(cy)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    dist = ndimage.distance_transform_edt(np.pad(mask[y0:y1, x0:x1], 1))[1:-1, 1:-1]
    iy, ix = np.unravel_index(int(dist.argmax()), dist.shape)
    return float(ix + x0), float(iy + y0)


def make_scene(rng: np.random.Generator, difficulty: str = "normal", size: tuple[int, int] | None = None,
               max_count: int = 10, groups: int = 1, group_by: str = "colour_and_shape",
               colours: tuple[str, ...] | None = None,
               shapes: tuple[str, ...] | None = None) -> tuple[Image.Image, dict]:
    """`groups` > 1 draws that many counted groups (each its own colour and, unless `group_by` is "colour", its
    own shape; each 0..max_count objects) and makes one of them, at random, the target: counting all objects no
    longer gives its count. `colours` / `shapes` (names from COLOURS / SHAPES) limit every object to them."""
    if difficulty not in DIFFICULTY:
        raise ValueError(f"unknown difficulty {difficulty!r}; expected one of {sorted(DIFFICULTY)}")
    if group_by not in GROUP_BY:
        raise ValueError(f"unknown group_by {group_by!r}; expected one of {GROUP_BY}")
    palette, shapes = _choices("colours", colours, tuple(COLOURS)), _choices("shapes", shapes, SHAPES)
    most = len(palette) if group_by == "colour" else min(len(palette), len(shapes))
    if not 1 <= groups <= most:
        raise ValueError(f"groups must be between 1 and {most} (each group needs its own colour"
                         f"{'' if group_by == 'colour' else ' and shape'}), got {groups}")
    d = DIFFICULTY[difficulty]
    w, h = size or (int(rng.integers(256, 513)), int(rng.integers(256, 385)))
    bg_kind = str(rng.choice(d["backgrounds"]))
    bg = background(rng, bg_kind, w, h)
    bg_mean = np.asarray(bg, dtype=float).reshape(-1, 3).mean(0)
    colours = [c for c in palette if _colour_ok(c, bg_mean)]
    distractors = d["distractors"][1] > 0
    if len(colours) < groups or (distractors and len(colours) * len(shapes) <= groups):
        raise ValueError(f"colours {list(palette)} and shapes {list(shapes)} leave too few kinds of object on a "
                         f"{bg_kind} background for {groups} group(s){' and distractors' if distractors else ''}")
    target = {"shape": str(rng.choice(shapes)), "colour": str(rng.choice(colours))}
    n_target = int(rng.integers(0, max_count + 1))
    n_other = int(rng.integers(*d["distractors"]) if d["distractors"][1] > d["distractors"][0] else 0)
    counted = [(target, n_target)]  # the groups drawn 0..max_count times (one unless `groups` > 1)
    for _ in range(groups - 1):
        shape = target["shape"] if group_by == "colour" else \
            str(rng.choice([s for s in shapes if s not in {g["shape"] for g, _ in counted}]))
        spec = {"shape": shape,
                "colour": str(rng.choice([c for c in colours if c not in {g["colour"] for g, _ in counted}]))}
        counted.append((spec, int(rng.integers(0, max_count + 1))))
    if groups > 1:
        target = counted[int(rng.integers(groups))][0]
    short = min(w, h)
    # Keep the scene placeable: with many targets shrink the radii.
    crowd = max(1.0, math.sqrt((sum(n for _, n in counted) + n_other) / 10))
    objs: list[dict] = []
    specs = [dict(spec) for spec, n in counted for _ in range(n)]
    for _ in range(n_other):
        while True:
            spec = {"shape": str(rng.choice(shapes)), "colour": str(rng.choice(colours))}
            if all(spec != g for g, _ in counted):
                specs.append(spec)
                break
    for spec in specs:
        r = rng.uniform(*d["radius"]) * short / crowd
        pos = _place(rng, objs, w, h, r, d["gap"])
        if pos is None:
            continue  # no room: the object is left out (and so not counted)
        objs.append({**spec, "cx": pos[0], "cy": pos[1], "r": float(r), "rot": float(rng.uniform(0, 2 * math.pi)),
                     "fill": str(rng.choice(d["fills"]))})
    order = rng.permutation(len(objs))
    scene = {"generator": "points", "background": bg_kind, "size": [w, h], "target": target,
             "objects": [objs[i] for i in order]}
    if groups > 1:
        scene["groups"] = [spec for spec, _ in counted]
    for _ in range(3):  # drop objects hidden too much by later ones, then redraw
        img, labels = render(scene, bg)
        areas = np.bincount(labels.ravel(), minlength=len(scene["objects"]) + 1)[1:]
        full = [_full_area(o, (w, h)) for o in scene["objects"]]
        keep = [o for o, a, f in zip(scene["objects"], areas, full) if a >= MIN_VISIBLE * f]
        if len(keep) == len(scene["objects"]):
            break
        scene["objects"] = keep
    masks = np.stack([labels == k for k in range(1, len(scene["objects"]) + 1)]) if scene["objects"] else \
        np.zeros((0, h, w), bool)
    for o, m in zip(scene["objects"], masks):
        o["point"] = list(centre_point(m))
        o["size"] = "large" if o["r"] >= 0.06 * short / crowd else "small"
        o["visible_area"] = int(m.sum())
    scene["_masks"] = masks
    return img, scene


def _choices(option: str, given: tuple[str, ...] | None, known: tuple[str, ...]) -> tuple[str, ...]:
    """`given` checked against `known` (all of them when None), in `known`'s order so draws do not depend on how
    the option was written."""
    if given is None:
        return known
    unknown = sorted(set(given) - set(known))
    if unknown or not given:
        raise ValueError(f"unknown {option} {unknown or list(given)}; expected some of {list(known)}")
    return tuple(k for k in known if k in given)


def _full_area(obj: dict, size: tuple[int, int]) -> int:
    m = Image.new("L", size, 0)
    draw_shape(ImageDraw.Draw(m), obj, 255)
    return int((np.asarray(m) > 0).sum())


# ------------------------------------------------------------------ referring expressions
def expressions(scene: dict, rng: np.random.Generator) -> list[tuple[str, list[dict]]]:
    """(label, matching objects) pairs: the target first, then other expressions (some absent)."""
    objs = scene["objects"]
    w, h = scene["size"]
    t = scene["target"]
    out = [(f"{t['colour']} {PLURAL[t['shape']]}", [o for o in objs if o["shape"] == t["shape"] and o["colour"] == t["colour"]])]
    shapes = sorted({o["shape"] for o in objs})
    colours = sorted({o["colour"] for o in objs})
    if shapes:
        s = str(rng.choice(shapes))
        out.append((PLURAL[s], [o for o in objs if o["shape"] == s]))
    if colours:
        c = str(rng.choice(colours))
        out.append((f"{c} shapes", [o for o in objs if o["colour"] == c]))
    absent_shape = [s for s in SHAPES if s not in shapes]
    if absent_shape:
        c = str(rng.choice(list(COLOURS)))
        out.append((f"{c} {PLURAL[str(rng.choice(absent_shape))]}", []))
    if objs and rng.random() < 0.5:
        s = str(rng.choice(shapes))
        half, test = [("top half", lambda o: o["point"][1] < h / 2), ("bottom half", lambda o: o["point"][1] >= h / 2),
                      ("left half", lambda o: o["point"][0] < w / 2),
                      ("right half", lambda o: o["point"][0] >= w / 2)][int(rng.integers(4))]
        out.append((f"{PLURAL[s]} in the {half}", [o for o in objs if o["shape"] == s and test(o)]))
    if objs and rng.random() < 0.4:
        size = str(rng.choice(["large", "small"]))
        s = str(rng.choice(shapes))
        out.append((f"{size} {PLURAL[s]}", [o for o in objs if o["shape"] == s and o["size"] == size]))
    return out


COUNT_QUESTIONS = ("every", "target")


def how_many_line(label: str, count: int) -> dict:
    """The exact-match "How many <label> are there?" line (also built by the held-out set's target counts)."""
    return {"question": f"How many {label} are there?", "answer": str(count), "metric": "exact"}


def annotations(scene: dict, rng: np.random.Generator, count_questions: str = "every") -> list[dict]:
    """Point-then-count and point-list lines for the target and, half the time each, the other expressions; and
    "How many ...?" questions: `every` asks about each expression a quarter of the time (~60% of those answers
    are 0 or 1, so the wording alone predicts most of them), `target` asks exactly one, about the target group,
    whose count is uniform in 0..max_count whatever the wording."""
    if count_questions not in COUNT_QUESTIONS:
        raise ValueError(f"unknown count_questions {count_questions!r}; expected one of {COUNT_QUESTIONS}")
    lines = []
    for k, (label, matched) in enumerate(expressions(scene, rng)):
        points = [[round(o["point"][0], 1), round(o["point"][1], 1), round(o["r"], 1)] for o in matched]
        if k == 0 or rng.random() < 0.5:
            lines.append({"task": "count", "label": label, "points": points})
        if k == 0 or rng.random() < 0.5:
            lines.append({"task": "point", "label": label, "points": points})
        asked = k == 0 if count_questions == "target" else rng.random() < 0.25
        if asked:
            lines.append(how_many_line(label, len(matched)))
    return lines


def caption_facts(scene: dict) -> list[str]:
    w, h = scene["size"]
    facts = [f"a {scene['background']} background"]
    for o in scene["objects"]:
        x, y = o["point"]
        where = ("upper" if y < h / 3 else "lower" if y > 2 * h / 3 else "middle") + " " + \
            ("left" if x < w / 3 else "right" if x > 2 * w / 3 else "centre")
        fill = "" if o["fill"] == "solid" else f"{o['fill']} "
        facts.append(f"a {o['size']} {fill}{o['colour']} {o['shape']} in the {where}")
    return facts


@register("points")
def generate_points(rng: np.random.Generator, index: int, difficulty: str = "normal",
                    size: tuple[int, int] | None = None, max_count: int = 10,
                    count_questions: str = "every", groups: int = 1,
                    group_by: str = "colour_and_shape", colours: tuple[str, ...] | None = None,
                    shapes: tuple[str, ...] | None = None) -> GeneratedImage:
    img, scene = make_scene(rng, difficulty, tuple(size) if size else None, max_count, groups, group_by,
                            colours, shapes)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 0.9))))
    scene["caption_facts"] = caption_facts(scene)
    return GeneratedImage(image=img, annotations=annotations(scene, rng, count_questions), scene=scene)

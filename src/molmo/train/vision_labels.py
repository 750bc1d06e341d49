"""Dense labels for vision pre-training, computed from what the generators know about each scene.

Every generated image gets full-resolution label maps (part, colour, shape, bar value) plus point lists
(object centres) and global targets (clock time, object count). `view_labels` samples them on the ViT's
patch grid for one view of the image (the letter-boxed global view, or a square crop), so the ViT learns
"what is in this patch" and "what does the whole image show" before the language model ever sees it.
Targets are chosen so that the answers the language model will be asked for sit linearly in the patch
features: hand directions on hand patches (their mean gives the time), the bar's letter on bar patches (a
letter query can attend to them), the centre's offset inside its patch and, on the global view, the patch's
own place in the image (together: a point's coordinates).

    labels = scene_labels(generated)                       # GeneratedImage -> SceneLabels
    targets = view_labels(labels, box, grid=8, letterbox=None)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from molmo.data.generators.base import GeneratedImage
from molmo.data.generators.scenes import COLOURS, SHAPES

# Part classes (per patch, multi-label fractions).
PARTS = ("object", "clock_face", "hour_hand", "minute_hand", "second_hand", "bar", "plot")
COLOUR_NAMES = tuple(COLOURS)
MAX_COUNT = 15
MAX_BARS = 12  # bars A-L
MAX_REGIONS = 24  # objects, clock hands or bars per image with a region (mask-pooled) target
SUBSAMPLE = 4  # label points per patch side


@dataclass
class SceneLabels:
    part: np.ndarray  # [H, W] uint8: 0 background, 1 + index into PARTS
    colour: np.ndarray  # [H, W] uint8: 0 none, 1 + index into COLOUR_NAMES
    shape: np.ndarray  # [H, W] uint8: 0 none, 1 + index into SHAPES
    value: np.ndarray  # [H, W] float32: bar value / axis max inside bars, NaN elsewhere
    centres: np.ndarray  # [K, 2] object centres (x, y) in pixels
    hour: int = -1  # 0-11 (12 o'clock = 0), -1 when not a clock
    minute: int = -1
    count: int = -1  # objects in a points scene
    bar: np.ndarray | None = None  # [H, W] uint8: 0 none, 1 + the bar's index (A = 0) inside bars
    hands: tuple[float, float] = (math.nan, math.nan)  # hour and minute hand angles, radians clockwise from 12
    # Regions: one per object, clock hand or bar. `region` [H, W] uint8 is 0 outside every region, else 1 + its
    # index; the per-region targets (NaN / -1 = none) are read from the mean feature over the region's patches.
    region: np.ndarray | None = None
    region_shape: np.ndarray | None = None  # [R] int64, index into SHAPES
    region_angle: np.ndarray | None = None  # [R, 2] float32, (sin, cos) of a clock hand's direction
    region_value: np.ndarray | None = None  # [R] float32, bar value / axis max
    centre_colours: np.ndarray | None = None  # [K] int64 per object centre, index into COLOUR_NAMES (points scenes)
    centre_shapes: np.ndarray | None = None  # [K] int64, index into SHAPES


def _points_labels(item: GeneratedImage) -> SceneLabels:
    scene = item.scene
    w, h = scene["size"]
    part = np.zeros((h, w), np.uint8)
    colour = np.zeros((h, w), np.uint8)
    shape = np.zeros((h, w), np.uint8)
    region = np.zeros((h, w), np.uint8)
    for i, (obj, mask) in enumerate(zip(scene["objects"], scene["_masks"])):
        part[mask] = 1 + PARTS.index("object")
        colour[mask] = 1 + COLOUR_NAMES.index(obj["colour"])
        shape[mask] = 1 + SHAPES.index(obj["shape"])
        if i < MAX_REGIONS:
            region[mask] = 1 + i
    centres = np.array([o["point"] for o in scene["objects"]], np.float32).reshape(-1, 2)
    shapes = np.array([SHAPES.index(o["shape"]) for o in scene["objects"]], np.int64)
    return SceneLabels(part, colour, shape, np.full((h, w), np.nan, np.float32), centres,
                       count=min(len(scene["objects"]), MAX_COUNT), region=region, region_shape=shapes[:MAX_REGIONS],
                       centre_colours=np.array([COLOUR_NAMES.index(o["colour"]) for o in scene["objects"]], np.int64),
                       centre_shapes=shapes)


def _clock_labels(item: GeneratedImage) -> SceneLabels:
    from molmo.data.generators.clocks import hand_angles
    s = item.scene
    w, h = s["size"]
    cx, cy = s["centre"]
    r = s["radius"]
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1 + PARTS.index("clock_face"))
    ha, ma, sa = hand_angles(s["hour"], s["minute"], s["second"])
    hands = [("hour_hand", ha, 0.5, 0.09), ("minute_hand", ma, 0.8, 0.06)]
    if s["shows_seconds"]:
        hands.append(("second_hand", sa, 0.86, 0.025))
    for name, angle, length, width in hands:
        a = math.radians(angle - s.get("rotation", 0.0))  # PIL rotates the drawn layer counter-clockwise
        tip = (cx + math.sin(a) * r * length, cy - math.cos(a) * r * length)
        draw.line([(cx, cy), tip], fill=1 + PARTS.index(name), width=max(1, round(r * width)))
    part = np.asarray(img, np.uint8)
    hand_parts = [1 + PARTS.index(n) for n in ("hour_hand", "minute_hand")]
    region = np.select([part == hand_parts[0], part == hand_parts[1]], [1, 2], 0).astype(np.uint8)
    angles = np.radians([ha, ma])
    empty = np.zeros((h, w), np.uint8)
    return SceneLabels(part, empty, empty, np.full((h, w), np.nan, np.float32), np.zeros((0, 2), np.float32),
                       hour=s["hour"] % 12, minute=s["minute"], hands=(float(angles[0]), float(angles[1])),
                       region=region, region_angle=np.stack([np.sin(angles), np.cos(angles)], -1).astype(np.float32))


def _bar_labels(item: GeneratedImage) -> SceneLabels:
    s = item.scene
    w, h = item.image.size
    part = np.zeros((h, w), np.uint8)
    value = np.full((h, w), np.nan, np.float32)
    bar = np.zeros((h, w), np.uint8)
    region = np.zeros((h, w), np.uint8)
    bar_values = []
    x0, y0, x1, y1 = (int(round(v)) for v in s["plot_px"])
    part[max(y0, 0):y1, max(x0, 0):x1] = 1 + PARTS.index("plot")
    top = s["value_axis"]["max"] or 1.0
    values = list(s["data"].values()) if isinstance(s["data"], dict) else [d[1] for d in s["data"]]
    for i, ((bx0, by0, bx1, by1), v) in enumerate(zip(s["bars_px"], values)):
        sl = np.s_[max(int(by0), 0):int(math.ceil(by1)), max(int(bx0), 0):int(math.ceil(bx1))]
        fraction = float(v) / top
        part[sl] = 1 + PARTS.index("bar")
        value[sl] = fraction
        bar[sl] = 1 + min(i, MAX_BARS - 1)
        if i < MAX_REGIONS:
            region[sl] = 1 + i
            bar_values.append(fraction)
    empty = np.zeros((h, w), np.uint8)
    return SceneLabels(part, empty, empty, value, np.zeros((0, 2), np.float32), bar=bar, region=region,
                       region_value=np.array(bar_values, np.float32))


def scene_labels(item: GeneratedImage) -> SceneLabels:
    g = item.scene.get("generator")
    if g == "points" or "_masks" in item.scene:
        return _points_labels(item)
    if g == "clocks":
        return _clock_labels(item)
    if item.scene.get("kind") in ("bar", "hbar"):
        return _bar_labels(item)
    raise ValueError(f"no dense labels for scene of generator {g!r} / kind {item.scene.get('kind')!r}")


def _onehot_fractions(sampled: np.ndarray, classes: int) -> np.ndarray:
    """[G, G, S] class ids -> [G, G, classes] fraction of sub-samples per class (class 0 = none dropped)."""
    onehot = np.eye(classes + 1, dtype=np.float32)[sampled]
    return onehot.mean(axis=2)[..., 1:]


def view_labels(labels: SceneLabels, box: tuple[float, float, float, float], grid: int,
                pad: tuple[float, float, float, float] | None = None) -> dict[str, np.ndarray]:
    """Targets for a view whose pixel (u, v) in [0, 1]^2 shows image point box[0] + u * (box[2]-box[0]), …
    `pad` is the (left, top, right, bottom) fraction of the view that is letter-box padding; it also marks the
    global view, the only one whose patches get their place in the image as a target. NaN = no target."""
    h, w = labels.part.shape
    sub = (np.arange(grid * SUBSAMPLE) + 0.5) / (grid * SUBSAMPLE)  # view coords of the sub-samples
    left, top, right, bottom = pad or (0.0, 0.0, 0.0, 0.0)
    ux = (sub - left) / max(1e-6, 1 - left - right)
    uy = (sub - top) / max(1e-6, 1 - top - bottom)
    xs = box[0] + ux * (box[2] - box[0])
    ys = box[1] + uy * (box[3] - box[1])
    inside_x = (ux >= 0) & (ux < 1) & (xs >= 0) & (xs < w)
    inside_y = (uy >= 0) & (uy < 1) & (ys >= 0) & (ys < h)
    xi = np.clip(xs.astype(int), 0, w - 1)
    yi = np.clip(ys.astype(int), 0, h - 1)
    valid = inside_y[:, None] & inside_x[None, :]

    def sample(m: np.ndarray, fill) -> np.ndarray:
        out = m[yi[:, None], xi[None, :]]
        out = np.where(valid, out, fill)
        # [G*S, G*S] -> [G, G, S*S]
        return out.reshape(grid, SUBSAMPLE, grid, SUBSAMPLE).transpose(0, 2, 1, 3).reshape(grid, grid, -1)

    part = _onehot_fractions(sample(labels.part, 0), len(PARTS))
    colour = _onehot_fractions(sample(labels.colour, 0), len(COLOUR_NAMES))
    shape = _onehot_fractions(sample(labels.shape, 0), len(SHAPES))
    with warnings.catch_warnings():  # patches outside every bar average to NaN (no value target)
        warnings.simplefilter("ignore", RuntimeWarning)
        value = np.nanmean(sample(labels.value, np.nan), axis=-1)
    bar = _onehot_fractions(sample(labels.bar if labels.bar is not None else np.zeros_like(labels.part), 0), MAX_BARS)
    centre = np.zeros((grid, grid), np.float32)
    offset = np.full((grid, grid, 2), np.nan, np.float32)  # the centre's place inside its patch, in [0, 1]^2
    inside = 0
    # How many centres of each colour and of each shape the view shows: a target for every patch, so that each
    # image token says the view's per-attribute counts and the language model looks a count up instead of
    # counting (decoder check: the first is learned in 400 steps, the second not).
    attribute_counts = np.full(len(COLOUR_NAMES) + len(SHAPES), 0.0 if labels.centre_colours is not None else np.nan,
                               np.float32)
    for k, (x, y) in enumerate(labels.centres):
        u = (x - box[0]) / (box[2] - box[0]) * (1 - left - right) + left
        v = (y - box[1]) / (box[3] - box[1]) * (1 - top - bottom) + top
        if 0 <= u < 1 and 0 <= v < 1:
            inside += 1
            centre[int(v * grid), int(u * grid)] = 1.0
            if labels.centre_colours is not None:
                attribute_counts[labels.centre_colours[k]] += 1
                attribute_counts[len(COLOUR_NAMES) + labels.centre_shapes[k]] += 1
            offset[int(v * grid), int(u * grid)] = (u * grid % 1, v * grid % 1)
    n = grid * grid
    hands = np.full((n, 4), np.nan, np.float32)  # (sin, cos) of the hour hand's angle, then the minute hand's
    for k, name in enumerate(("hour_hand", "minute_hand")):
        on = part[..., PARTS.index(name)].reshape(-1) > 0
        angle = labels.hands[k]
        hands[on, 2 * k:2 * k + 2] = (math.sin(angle), math.cos(angle))
    # Both hands' directions on every patch of the clock face. Trained on the hand patches alone, the ViT learns
    # each hand's own direction but not which hand is which (the hour reads at 0.115 from the mean of all its
    # patch features, 0.545 from the hour hand's patches picked by the label). Asking the whole face for the
    # time makes it find the hour hand and write the time into every image token (0.685 from the mean).
    face_time = np.full((n, 4), np.nan, np.float32)
    if np.isfinite(hands[:, [0, 2]]).any(0).all():  # both hands in view: a crop without them cannot tell the time
        face = [PARTS.index(p) for p in ("clock_face", "hour_hand", "minute_hand", "second_hand")]
        on_face = part.reshape(n, -1)[:, face].sum(-1) > 0.5
        face_time[on_face] = [f(a) for a in labels.hands for f in (math.sin, math.cos)]
    position = np.full((n, 2), np.nan, np.float32)
    if pad is not None:  # patch centres in image coordinates (0-1); NaN on the letter-box padding
        centres = (np.arange(grid) + 0.5) / grid
        px = box[0] / w + (centres - left) / max(1e-6, 1 - left - right) * (box[2] - box[0]) / w
        py = box[1] / h + (centres - top) / max(1e-6, 1 - top - bottom) * (box[3] - box[1]) / h
        gx, gy = np.meshgrid(px, py)
        shown = ((gx >= 0) & (gx <= 1) & (gy >= 0) & (gy <= 1)).reshape(-1)
        position[shown] = np.stack([gx, gy], -1).reshape(-1, 2)[shown]
    # Region coverage per patch ([n, MAX_REGIONS]) and the per-region targets, padded to MAX_REGIONS.
    region_map = labels.region if labels.region is not None else np.zeros_like(labels.part)
    regions = _onehot_fractions(sample(region_map, 0), MAX_REGIONS).reshape(n, -1)
    region_shape = np.full(MAX_REGIONS, -1, np.int64)
    region_angle = np.full((MAX_REGIONS, 2), np.nan, np.float32)
    region_value = np.full(MAX_REGIONS, np.nan, np.float32)
    for target, source in ((region_shape, labels.region_shape), (region_angle, labels.region_angle),
                           (region_value, labels.region_value)):
        if source is not None:
            target[:len(source)] = source
    return {"regions": regions, "region_shape": region_shape, "region_angle": region_angle,
            "region_value": region_value, "part": part.reshape(n, -1), "colour": colour.reshape(n, -1),
            "shape": shape.reshape(n, -1),
            "value": np.asarray(value, np.float32).reshape(-1), "centre": centre.reshape(-1),
            "bar": bar.reshape(n, -1), "offset": offset.reshape(n, 2), "hands": hands, "face_time": face_time,
            "position": position,
            # objects whose centre this view shows; -1 (no target) outside counting scenes
            "count": np.array(min(inside, MAX_COUNT) if labels.count >= 0 else -1, np.int64),
            "attribute_counts": attribute_counts}

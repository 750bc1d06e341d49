"""Readers for local copies of the PixMo datasets in their published Hugging Face schemas (recipe-spec §2.1, §6)
-> `list[RawExample]`, one example per image with all of that image's annotations.

Files may be parquet, JSON (a list of rows, `{"rows": [...]}` or the datasets-server `{"rows": [{"row": …}]}`)
or JSONL; a directory means every such file in it, in name order. Images are either embedded (the HF `Image`
column: `{"bytes": …, "path": …}` or raw bytes; PixMo-Docs) or downloaded into a folder where each file is
named by the sha256 hex digest of its URL (`molmo.data.download`), with or without an extension. Rows whose
image is missing there are dropped, as in the released loader (`RawExample.source` keeps the file name).

    examples = read_pixmo("points", "pixmo-points/train.parquet", image_dir="images/")
    examples = read_pixmo("docs", "pixmo-docs/charts/train-0000.parquet", config="charts")

Datasets and expected columns (extra columns are ignored; a missing required column is an error naming
the file and the column):

| name | columns | annotation(s) per image |
|---|---|---|
| cap | image_url, caption, transcripts | caption (+ one `transcript` per transcript) |
| ask_model_anything | image_url, [image_sha256], question, answer | qa, style `user_qa` |
| cap_qa | image_url, [image_sha256], messages (alternating user/assistant strings) | messages, `synthetic_qa` |
| points | image_url, [image_sha256], label, points [{x, y}], [collection_method], [count] | point or count |
| points_eval | image_url, [image_sha256], label, points [{x, y}], [masks] | point (masks in meta) |
| point_explanations | image_url, [image_sha256], question, parsed_response, alt_text, inline_text, points | qa, `point_qa` |
| docs | image (embedded), [image_id], questions ({question, answer} list or {question: [], answer: []}) | qa, `pixmo_docs_<config>` |
| count | image_url, [image_sha256], label, count, points [{x, y}] (pixels) | count / point |
| clocks | image (embedded) or example_id (file `<example_id>.*` in image_dir), text or hour/minute/second | qa, `clocks` |

Coordinate scale (spec §6/§7.1): PixMo-Points, -Points-Eval and -Point-Explanations store 0–100 values
(the official loader's `point_scale=100`, although the card says pixels); PixMo-Count stores pixels. Readers
convert to pixels of the EXIF-rotated image; `point_scale="pixels"|"percent"` overrides the default, and
percent values above 100 raise PixMoError (they mean the file is in pixels).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable

from PIL import Image

from molmo.data.example import Annotation, RawExample
from molmo.text.points import points_to_text

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".parquet", ".json", ".jsonl")
POINT_PLACEHOLDER = "<|POINT|>"
CLOCK_PROMPT = "What time is being shown?"
DOCS_CONFIGS = ("charts", "tables", "diagrams", "other")
SPLITS = ("train", "validation", "test")
HOLDOUT_SEED = 96817  # the released loader's train/validation split seed
# Images held out of the training split of the sets without a published validation split (recipe-spec §2.1).
HOLDOUT_IMAGES = {"pixmo-cap": 2048, "pixmo-ask-model-anything": 2048, "pixmo-cap-qa": 2048, "pixmo-points": 2048,
                  "pixmo-point-explanations": 1024}
# EXIF orientations that swap width and height (5-8: transposed / rotated by 90 degrees).
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}


class PixMoError(ValueError):
    """A PixMo (or academic) file that cannot be read: the message names the file and the problem."""


# ---------------------------------------------------------------------------------------------- tables
def table_files(path: str | Path, split: str | None = None) -> list[Path]:
    """The table files of a file or a folder (searched at any depth, as a hub snapshot lays them out). With
    `split`, a folder whose files are named by split (`train-…`, `validation-…`, `test-…`) gives that split's."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in TABLE_SUFFIXES and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise PixMoError(f"{path}: directory holds no {'/'.join(TABLE_SUFFIXES)} files")
        named = [p for p in files if p.name.startswith(SPLITS)]
        if split is not None and named:
            files = [p for p in named if p.name.startswith(split)]
            if not files:
                raise PixMoError(f"{path}: no {split!r} table files (found {sorted({p.name for p in named})[:4]})")
        return files
    if not path.is_file():
        raise PixMoError(f"{path}: no such file")
    if path.suffix not in TABLE_SUFFIXES:
        raise PixMoError(f"{path}: unsupported table format {path.suffix!r}; expected one of {TABLE_SUFFIXES}")
    return [path]


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of one parquet / JSON / JSONL file as dicts (parquet structs and lists become dicts and lists)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except Exception as e:  # noqa: BLE001 - pyarrow raises many types for corrupt files
            raise PixMoError(f"{path}: not a readable parquet file ({e})") from e
    text = path.read_text()
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            rows = data.get("rows", data.get("data")) if isinstance(data, dict) else data
    except json.JSONDecodeError as e:
        raise PixMoError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from e
    if not isinstance(rows, list):
        raise PixMoError(f"{path}: expected a list of rows, or an object with 'rows' or 'data'")
    rows = [r["row"] if isinstance(r, dict) and set(r) >= {"row"} and isinstance(r["row"], dict) else r for r in rows]
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise PixMoError(f"{path}: row {i} is not an object")
    return rows


def read_tables(path: str | Path, split: str | None = None) -> list[tuple[Path, list[dict[str, Any]]]]:
    return [(f, read_table(f)) for f in table_files(path, split)]


def require_columns(rows: list[dict], required: Iterable[str], file: Path, dataset: str) -> None:
    """Every row needs every required column (the first offending row is named)."""
    required = list(required)
    for i, row in enumerate(rows):
        missing = [c for c in required if c not in row]
        if missing:
            raise PixMoError(f"{file}: {dataset} row {i} is missing column(s) {missing}; "
                             f"it has {sorted(row)} (expected {required})")


# ---------------------------------------------------------------------------------------------- images
def url_hash(url: str) -> str:
    """File name of a downloaded image: sha256 hex digest of the URL."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def find_image_file(image_dir: Path, stem: str) -> Path | None:
    exact = image_dir / stem
    if exact.is_file():
        return exact
    matches = sorted(image_dir.glob(f"{stem}.*"))
    return matches[0] if matches else None


def image_size(image: str | Path | bytes) -> tuple[int, int]:
    """(width, height) after EXIF orientation, as the loader will see it (reads the header only)."""
    try:
        with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except Exception as e:  # noqa: BLE001 - any unreadable image
        raise PixMoError(f"image {image if not isinstance(image, bytes) else '<embedded bytes>'} "
                         f"is not readable ({e.__class__.__name__}: {e})") from e
    return (h, w) if orientation in _SWAPPING_ORIENTATIONS else (w, h)


def embedded_image(value: Any, file: Path) -> bytes | Path | None:
    """The HF `Image` column: {"bytes": b"…"|base64 str, "path": …}, raw bytes, or a path relative to file."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, dict):
        data = value.get("bytes")
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
        if isinstance(data, str) and data:
            return base64.b64decode(data)
        value = value.get("path")
    if isinstance(value, str) and value:
        path = Path(value) if Path(value).is_absolute() else file.parent / value
        return path if path.is_file() else None
    return None


# ---------------------------------------------------------------------------------------------- points
def xy_list(points: Any, file: Path, dataset: str) -> list[tuple[float, float]]:
    """[{x, y}, …] or [[x, y], …] (or a struct of lists {x: [...], y: [...]}) -> [(x, y), …]."""
    if points is None:
        return []
    if isinstance(points, dict) and "x" in points and "y" in points:
        points = [{"x": x, "y": y} for x, y in zip(points["x"], points["y"])]
    out = []
    for p in points:
        if isinstance(p, dict) and "x" in p and "y" in p:
            out.append((float(p["x"]), float(p["y"])))
        elif isinstance(p, (list, tuple)) and len(p) >= 2:
            out.append((float(p[0]), float(p[1])))
        else:
            raise PixMoError(f"{file}: {dataset} point {p!r} is neither {{'x', 'y'}} nor [x, y]")
    return out


def to_pixels(points: list[tuple[float, float]], size: tuple[int, int], scale: str, file: Path,
              dataset: str) -> list[list[float]]:
    if scale == "pixels":
        return [[x, y] for x, y in points]
    if scale != "percent":
        raise ValueError(f"unknown point_scale {scale!r}; expected 'percent' or 'pixels'")
    bad = [p for p in points if not (0 <= p[0] <= 100 and 0 <= p[1] <= 100)]
    if bad:
        raise PixMoError(f"{file}: {dataset} point {bad[0]} is outside 0-100 although point_scale='percent' "
                         "(pass point_scale='pixels' if this file stores pixels)")
    w, h = size
    return [[x / 100.0 * w, y / 100.0 * h] for x, y in points]


# ---------------------------------------------------------------------------------------------- grouping
def holdout_keys(keys: Iterable[str], n_val: int, dataset: str, seed: int = HOLDOUT_SEED) -> set[str]:
    """The `n_val` image keys of the validation split: those with the smallest seeded hash, so the split depends
    only on the images present, not on row order."""
    keys = list(keys)
    if n_val >= len(keys):
        raise PixMoError(f"{dataset} has {len(keys)} image(s): cannot hold out {n_val} for validation "
                         "(pass a smaller n_val)")
    ranked = sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode("utf-8")).digest())
    return set(ranked[:n_val])


def excluded_urls(path: str | Path | None) -> set[str]:
    """image_url values of a table (e.g. pixmo-points-eval, whose images are kept out of training)."""
    if path is None:
        return set()
    return {row["image_url"] for _, rows in read_tables(path) for row in rows if row.get("image_url")}


class _Grouper:
    """Collects annotations per image key (in first-seen order) and resolves the image once per key.
    `split` ("train" / "validation", None = all) holds `n_val` images out of training; `exclude` keys are
    dropped (e.g. the pointing-eval images)."""

    def __init__(self, dataset: str, image_dir: str | Path | None, split: str | None = None, n_val: int | None = None,
                 exclude: set[str] | None = None):
        self.dataset = dataset
        self.image_dir = Path(image_dir) if image_dir is not None else None
        if self.image_dir is not None and not self.image_dir.is_dir():
            raise PixMoError(f"image folder {self.image_dir} does not exist")
        if split not in (None, "train", "validation"):
            raise ValueError(f"unknown split {split!r}; expected 'train', 'validation' or None (all rows)")
        self.split, self.n_val = split, HOLDOUT_IMAGES.get(dataset, 0) if n_val is None else n_val
        self.exclude = exclude or set()
        self.groups: "OrderedDict[str, RawExample]" = OrderedDict()
        self.missing: set[str] = set()

    def resolve_url(self, url: str) -> tuple[str | Path | None, tuple[int, int] | None]:
        if self.image_dir is None:
            return url, None  # not downloaded: the URL stands in; sizes are unknown
        path = find_image_file(self.image_dir, url_hash(url))
        return (path, image_size(path)) if path is not None else (None, None)

    def example(self, key: str, file: Path, resolve: Callable[[], tuple[Any, tuple[int, int] | None]]) -> RawExample | None:
        if key in self.missing or key in self.exclude:
            return None
        if key not in self.groups:
            image, size = resolve()
            if image is None:
                self.missing.add(key)
                return None
            self.groups[key] = RawExample(image=image, annotations=[], image_size=size, source=str(file), id=key)
        return self.groups[key]

    def result(self) -> list[RawExample]:
        if self.missing:
            log.warning("%s: dropped %d image(s) that are not in %s", self.dataset, len(self.missing), self.image_dir)
        examples = [ex for ex in self.groups.values() if ex.annotations]
        if self.split is None or not self.n_val:
            return examples
        held = holdout_keys((ex.id for ex in examples), self.n_val, self.dataset)
        return [ex for ex in examples if (ex.id in held) == (self.split == "validation")]


def _need_size(ex: RawExample, file: Path, dataset: str) -> tuple[int, int]:
    if ex.image_size is None:
        raise PixMoError(f"{file}: {dataset} points need the images (pass image_dir with the downloaded images) "
                         "to convert coordinates to pixels")
    return ex.image_size


# ---------------------------------------------------------------------------------------------- readers
def read_cap(path, image_dir=None, transcripts: bool = False, split=None, n_val=None) -> list[RawExample]:
    """Captions only by default (fine-tuning); `transcripts=True` adds every transcript (pre-training draws one)."""
    g = _Grouper("pixmo-cap", image_dir, split, n_val)
    for file, rows in read_tables(path, "train"):
        require_columns(rows, ["image_url", "caption"], file, "pixmo-cap")
        for row in rows:
            ex = g.example(row["image_url"], file, lambda: g.resolve_url(row["image_url"]))
            if ex is None:
                continue
            ex.annotations.append(Annotation(kind="caption", answer=row["caption"], style="long_caption"))
            if transcripts:
                ex.annotations += [Annotation(kind="transcript", answer=t, style="transcript")
                                   for t in row.get("transcripts") or []]
    return g.result()


def read_ask_model_anything(path, image_dir=None, split=None, n_val=None) -> list[RawExample]:
    g = _Grouper("pixmo-ask-model-anything", image_dir, split, n_val)
    for file, rows in read_tables(path, "train"):
        require_columns(rows, ["image_url", "question", "answer"], file, "pixmo-ask-model-anything")
        for row in rows:
            ex = g.example(row["image_url"], file, lambda: g.resolve_url(row["image_url"]))
            if ex is not None:
                ex.annotations.append(Annotation(kind="qa", question=row["question"], answer=row["answer"],
                                                 style="user_qa"))
    return g.result()


def read_cap_qa(path, image_dir=None, split=None, n_val=None) -> list[RawExample]:
    g = _Grouper("pixmo-cap-qa", image_dir, split, n_val)
    for file, rows in read_tables(path, "train"):
        require_columns(rows, ["image_url", "messages"], file, "pixmo-cap-qa")
        for i, row in enumerate(rows):
            msgs = row["messages"]
            if not isinstance(msgs, list) or len(msgs) < 2 or len(msgs) % 2:
                raise PixMoError(f"{file}: pixmo-cap-qa row {i}: 'messages' must be an even-length list of "
                                 "alternating user/assistant strings")
            ex = g.example(row["image_url"], file, lambda: g.resolve_url(row["image_url"]))
            if ex is not None:
                turns = [{"role": "user" if k % 2 == 0 else "assistant", "content": m} for k, m in enumerate(msgs)]
                ex.annotations.append(Annotation(kind="messages", messages=turns, style="synthetic_qa"))
    return g.result()


COLLECTION_SUBSETS = {"basic": "pointing", "high_frequency": "counting"}


def read_points(path, image_dir=None, mode: str = "pointing", subset: str | None = None,
                point_scale: str = "percent", eval_set: bool = False, split=None, n_val=None,
                exclude: str | Path | None = None) -> list[RawExample]:
    """One annotation per label row: `mode="pointing"` -> point annotations, `"point_count"` -> count
    annotations (we do not reproduce the released name/style inversion, §7.5). `subset` = "basic" keeps
    `collection_method == "pointing"` rows, "high_frequency" keeps "counting" rows, None keeps all.
    `exclude`: a table (pixmo-points-eval) whose images are left out."""
    name = "pixmo-points-eval" if eval_set else "pixmo-points"
    if mode not in ("pointing", "point_count"):
        raise ValueError(f"unknown mode {mode!r}; expected 'pointing' or 'point_count'")
    if subset is not None and subset not in COLLECTION_SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; expected one of {sorted(COLLECTION_SUBSETS)} or None")
    g = _Grouper(name, image_dir, split, n_val, excluded_urls(exclude))
    for file, rows in read_tables(path, None if eval_set else "train"):
        require_columns(rows, ["image_url", "label", "points"], file, name)
        for i, row in enumerate(rows):
            method = row.get("collection_method")
            if method is not None and method not in COLLECTION_SUBSETS.values():
                raise PixMoError(f"{file}: {name} row {i} has unknown collection_method {method!r}; "
                                 f"expected one of {sorted(COLLECTION_SUBSETS.values())}")
            if subset is not None and method != COLLECTION_SUBSETS[subset]:
                continue
            ex = g.example(row["image_url"], file, lambda: g.resolve_url(row["image_url"]))
            if ex is None:
                continue
            pts = to_pixels(xy_list(row["points"], file, name), _need_size(ex, file, name), point_scale, file, name)
            meta = {"count": row["count"]} if row.get("count") is not None else {}
            if eval_set and row.get("masks") is not None:
                meta["masks"] = row["masks"]
            ex.annotations.append(Annotation(kind="point" if mode == "pointing" else "count",
                                             label=str(row["label"]).lower(), points=pts, style=mode, meta=meta))
    return g.result()


def read_points_eval(path, image_dir=None, point_scale: str = "percent") -> list[RawExample]:
    return read_points(path, image_dir, mode="pointing", point_scale=point_scale, eval_set=True)


def explanation_answer(response: str, alt_text: list[str], inline_text: list[str], points: list,
                       file: Path, row: int) -> str:
    """Replace the `<|POINT|>` placeholders, in order, by point tags (coordinates already 0–100)."""
    pieces = response.split(POINT_PLACEHOLDER)
    n = len(pieces) - 1
    if not (len(alt_text) == len(inline_text) == len(points) == n):
        raise PixMoError(f"{file}: pixmo-point-explanations row {row}: {n} {POINT_PLACEHOLDER} placeholder(s) but "
                         f"{len(alt_text)} alt_text, {len(inline_text)} inline_text, {len(points)} point lists")
    out = [pieces[0]]
    for k in range(n):
        pts = xy_list(points[k], file, "pixmo-point-explanations")
        # image_size=(100, 100): the stored values are percentages already.
        out.append(points_to_text(pts, (100, 100), label=inline_text[k], alt=alt_text[k]) if pts else inline_text[k])
        out.append(pieces[k + 1])
    return "".join(out)


def read_point_explanations(path, image_dir=None, split=None, n_val=None, split_groups: bool = True) -> list[RawExample]:
    """One image's questions, split in two examples when it has several (the first ceil(n/2), then the rest),
    as the released loader does; this also doubles what the mixture rate counts for such images."""
    name = "pixmo-point-explanations"
    g = _Grouper(name, image_dir, split, n_val)
    for file, rows in read_tables(path, "train"):
        require_columns(rows, ["image_url", "question", "parsed_response", "alt_text", "inline_text", "points"],
                        file, name)
        for i, row in enumerate(rows):
            if row["parsed_response"] is None:
                continue  # the released loader drops rows without a parsed response
            answer = explanation_answer(row["parsed_response"], row["alt_text"] or [], row["inline_text"] or [],
                                        row["points"] or [], file, i)
            ex = g.example(row["image_url"], file, lambda: g.resolve_url(row["image_url"]))
            if ex is not None:
                ex.annotations.append(Annotation(kind="qa", question=row["question"], answer=answer, style="point_qa"))
    examples = g.result()
    return [half for ex in examples for half in split_in_halves(ex)] if split_groups else examples


def split_in_halves(example: RawExample) -> list[RawExample]:
    n = len(example.annotations)
    if n < 2:
        return [example]
    first = (n + 1) // 2
    return [dataclasses.replace(example, annotations=example.annotations[:first], id=f"{example.id}#0"),
            dataclasses.replace(example, annotations=example.annotations[first:], id=f"{example.id}#1")]


def _docs_questions(value: Any, file: Path, row: int) -> list[tuple[str, str]]:
    if isinstance(value, dict) and "question" in value and "answer" in value:
        return list(zip(value["question"], value["answer"]))
    if isinstance(value, list) and all(isinstance(q, dict) and "question" in q and "answer" in q for q in value):
        return [(q["question"], q["answer"]) for q in value]
    raise PixMoError(f"{file}: pixmo-docs row {row}: 'questions' must be a list of {{question, answer}} "
                     "or {question: [...], answer: [...]}")


def read_docs(path, config: str | None = None, split: str | None = None) -> list[RawExample]:
    """PixMo-Docs: images embedded. `config` (charts/tables/diagrams/other) picks the style (and, in a hub
    snapshot folder, the config's subfolder); by default it is guessed from the path. `split` picks the
    `train-…` / `validation-…` files."""
    if config is not None and Path(path, config).is_dir():
        path = Path(path, config)
    if config is None:
        config = next((c for c in DOCS_CONFIGS if c in str(path).lower()), None)
        if config is None:
            raise PixMoError(f"{path}: cannot tell the pixmo-docs config from the path; pass config= one of {DOCS_CONFIGS}")
    if config not in DOCS_CONFIGS:
        raise ValueError(f"unknown pixmo-docs config {config!r}; expected one of {DOCS_CONFIGS}")
    out = []
    for file, rows in read_tables(path, split):
        require_columns(rows, ["image", "questions"], file, "pixmo-docs")
        for i, row in enumerate(rows):
            image = embedded_image(row["image"], file)
            if image is None:
                raise PixMoError(f"{file}: pixmo-docs row {i} has no image bytes or readable image path")
            anns = [Annotation(kind="qa", question=q, answer=a, style=f"pixmo_docs_{config}")
                    for q, a in _docs_questions(row["questions"], file, i)]
            out.append(RawExample(image=image, annotations=anns, image_size=image_size(image), source=str(file),
                                  id=str(row.get("image_id") or f"{file.name}:{i}")))
    return out


def read_count(path, image_dir=None, mode: str = "pointing", point_scale: str = "pixels",
               split: str | None = None) -> list[RawExample]:
    """PixMo-Count: one label per row, points in pixels. Validation/test rows have no points, only the
    verified `count`: they become count annotations whose `answer` is the number (evaluation only)."""
    name = "pixmo-count"
    if mode not in ("pointing", "point_count"):
        raise ValueError(f"unknown mode {mode!r}; expected 'pointing' or 'point_count'")
    g = _Grouper(name, image_dir)
    for file, rows in read_tables(path, split):
        require_columns(rows, ["image_url", "label", "count"], file, name)
        for row in rows:
            ex = g.example(row["image_url"], file, lambda: g.resolve_url(row["image_url"]))
            if ex is None:
                continue
            raw = xy_list(row.get("points"), file, name)
            label = str(row["label"]).lower()
            if not raw and int(row["count"]) > 0:  # eval split: count only
                ex.annotations.append(Annotation(kind="count", label=label, answer=str(int(row["count"])),
                                                 style="point_count", metric="exact",
                                                 meta={"count": int(row["count"])}))
                continue
            pts = to_pixels(raw, _need_size(ex, file, name), point_scale, file, name)
            ex.annotations.append(Annotation(kind="point" if mode == "pointing" else "count", label=label, points=pts,
                                             style=mode, meta={"count": int(row["count"])}))
    return g.result()


def clock_text(row: dict) -> str:
    """The target time: the v2 `text` column when present, else `H:MM` (+ `:SS`) from hour/minute/second."""
    if row.get("text"):
        return str(row["text"])
    text = f"{int(row['hour'])}:{int(row['minute']):02d}"
    return text + f":{int(row['second']):02d}" if row.get("second") is not None else text


def read_clocks(path, image_dir=None) -> list[RawExample]:
    name = "pixmo-clocks"
    out = []
    folder = Path(image_dir) if image_dir is not None else None
    dropped = 0
    for file, rows in read_tables(path):
        for i, row in enumerate(rows):
            if not row.get("text") and not all(k in row for k in ("hour", "minute")):
                raise PixMoError(f"{file}: {name} row {i} needs 'text' or 'hour' and 'minute' columns; it has {sorted(row)}")
            image = embedded_image(row.get("image"), file)
            if image is None and folder is not None and row.get("example_id") is not None:
                image = find_image_file(folder, str(row["example_id"]))
            if image is None:
                if folder is None and "image" not in row:
                    raise PixMoError(f"{file}: {name} rows carry no image; render them and pass image_dir "
                                     "(files named <example_id>.png)")
                dropped += 1
                continue
            ann = Annotation(kind="qa", question=CLOCK_PROMPT, answer=clock_text(row), style="clocks", metric="clock")
            out.append(RawExample(image=image, annotations=[ann], image_size=image_size(image), source=str(file),
                                  id=str(row.get("example_id", f"{file.name}:{i}"))))
    if dropped:
        log.warning("%s: dropped %d row(s) without an image", name, dropped)
    return out


READERS: dict[str, Callable[..., list[RawExample]]] = {
    "cap": read_cap, "ask_model_anything": read_ask_model_anything, "cap_qa": read_cap_qa, "points": read_points,
    "points_eval": read_points_eval, "point_explanations": read_point_explanations, "docs": read_docs,
    "count": read_count, "clocks": read_clocks,
}


def read_pixmo(dataset: str, path: str | Path, **options: Any) -> list[RawExample]:
    """Read a PixMo subset by short name (see READERS); options go to that reader."""
    key = dataset.lower().replace("-", "_").removeprefix("pixmo_")
    if key not in READERS:
        raise ValueError(f"unknown PixMo dataset {dataset!r}; expected one of {sorted(READERS)}")
    return READERS[key](path, **options)


__all__ = ["PixMoError", "READERS", "read_pixmo", "read_table", "read_tables", "url_hash", "image_size"]

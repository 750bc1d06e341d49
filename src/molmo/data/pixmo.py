"""Readers for local copies of the PixMo datasets in their published Hugging Face schemas (recipe-spec §2.1, §6)
-> a sequence of RawExample (one per image with all of that image's annotations), built on access from the
memory-mapped tables (molmo.data.tables), so memory does not grow with the table.

Files may be parquet, JSON (a list of rows, `{"rows": [...]}` or the datasets-server `{"rows": [{"row": …}]}`)
or JSONL; a directory means every such file below it, in name order (a hub snapshot's `train-…` /
`validation-…` files by split). Images are either embedded (the HF `Image` column: `{"bytes": …, "path": …}`
or raw bytes; PixMo-Docs) or downloaded into a folder where each file is named by the sha256 hex digest of its
URL (`molmo.data.download`), with or without an extension. Rows whose image is missing there are dropped, as in
the released loader (`RawExample.source` keeps the file name). `split="train"|"validation"` holds images out
of the sets without a published validation split (2,048, Point-Explanations 1,024; seed 96817); a row's
problems (a bad point, odd CapQA messages) are reported when its example is read.

    examples = read_pixmo("points", "pixmo-points/train.parquet", image_dir="images/")
    examples = read_pixmo("docs", "pixmo-docs/charts/train-0000.parquet", config="charts")

Datasets and expected columns (extra columns are ignored; a missing required column is an error naming
the file and the column):

| name | columns | annotation(s) per image |
|---|---|---|
| cap | image_url, caption, transcripts | caption (+ one `transcript` per transcript with transcripts=True) |
| ask_model_anything | image_url, [image_sha256], question, answer | qa, style `user_qa` |
| cap_qa | image_url, [image_sha256], messages (alternating user/assistant strings) | messages, `synthetic_qa` |
| points | image_url, [image_sha256], label, points [{x, y}], [collection_method], [count] | point or count |
| points_eval | image_url, [image_sha256], label, points [{x, y}], [masks] | point (masks in meta) |
| point_explanations | image_url, [image_sha256], question, parsed_response, alt_text, inline_text, points | qa, `point_qa` (two examples per image: ⌈n/2⌉ questions, the rest) |
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
import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from molmo.data.example import Annotation, RawExample
from molmo.data.tables import LazyExamples, TableError, TableSet, group_rows, iter_strings
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


PixMoError = TableError  # a PixMo (or academic) table that cannot be read: the message names file and problem


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


def to_pixels(points: list[tuple[float, float]], size: tuple[int, int] | None, scale: str, file: Path,
              dataset: str) -> list[list[float]]:
    if scale == "pixels":
        return [[x, y] for x, y in points]
    if scale != "percent":
        raise ValueError(f"unknown point_scale {scale!r}; expected 'percent' or 'pixels'")
    bad = [p for p in points if not (0 <= p[0] <= 100 and 0 <= p[1] <= 100)]
    if bad:
        raise PixMoError(f"{file}: {dataset} point {bad[0]} is outside 0-100 although point_scale='percent' "
                         "(pass point_scale='pixels' if this file stores pixels)")
    if size is None:
        raise PixMoError(f"{file}: {dataset} points in percent need the images (pass image_dir with the downloaded "
                         "images) to convert coordinates to pixels")
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
    col = TableSet.open(table_files(path)).column("image_url")
    return {u for u in iter_strings(col) if u}


def _open(path, dataset: str, required: list[str], file_split: str | None) -> TableSet:
    rows = TableSet.open(table_files(path, file_split))
    for f in rows.files:
        bad = f.missing_columns(required)
        if bad is not None:
            raise PixMoError(f"{f.path}: {dataset} row {bad[0]} is missing column(s) {bad[1]}; "
                             f"it has {sorted(f.columns)} (expected {required})")
    return rows


def _image_stems(image_dir: Path) -> set[str]:
    """Names (without extension) of the files in the image folder: one directory scan instead of one stat per
    image."""
    with os.scandir(image_dir) as it:
        return {e.name.split(".", 1)[0] for e in it if e.is_file()}


def url_examples(dataset: str, path, image_dir, required: list[str],
                 annotations: Callable[[Path, int, dict, tuple[int, int] | None], list[Annotation]], *,
                 file_split: str | None = "train", split: str | None = None, n_val: int | None = None,
                 keep_rows: np.ndarray | None = None, exclude: set[str] = frozenset(), needs_size: bool = False,
                 halves: bool = False, rows: TableSet | None = None) -> LazyExamples:
    """The examples of a URL-based PixMo table: one per image (all its kept rows), images not downloaded into
    `image_dir` dropped (as the released loader does), `exclude`d URLs dropped, `split` = "train" /
    "validation" holding `n_val` images out (None: all), `halves` splitting an image's rows in two examples
    (first ceil(n/2), then the rest). Rows become annotations only when an example is read."""
    if split not in (None, "train", "validation"):
        raise ValueError(f"unknown split {split!r}; expected 'train', 'validation' or None (all rows)")
    folder = Path(image_dir) if image_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise PixMoError(f"image folder {folder} does not exist")
    rows = rows if rows is not None else _open(path, dataset, required, file_split)
    gid, urls = rows.group_ids("image_url")
    keep = np.ones(len(rows), bool) if keep_rows is None else keep_rows
    stems = _image_stems(folder) if folder is not None else None
    valid = np.zeros(len(urls), bool)
    missing = 0
    for g, url in enumerate(iter_strings(urls)):
        present = stems is None or url_hash(url) in stems
        missing += not present
        valid[g] = present and url not in exclude
    if missing:
        log.warning("%s: dropped %d image(s) that are not in %s", dataset, missing, folder)
    has_rows = np.bincount(gid[keep & (gid >= 0)], minlength=len(urls)) > 0
    groups = np.flatnonzero(valid & has_rows)
    n_val = HOLDOUT_IMAGES.get(dataset, 0) if n_val is None else n_val
    if split is not None and n_val:
        keys = urls.take(pa.array(groups, pa.int64()))
        held = holdout_keys(iter_strings(keys), n_val, dataset)
        in_val = np.fromiter((u in held for u in iter_strings(keys)), bool, len(groups))
        groups = groups[in_val == (split == "validation")]
    example_of = np.full(len(urls), -1, np.int64)
    example_of[groups] = np.arange(len(groups))
    row_example = np.where(gid >= 0, example_of[np.maximum(gid, 0)], -1)
    order, offsets = group_rows(row_example, keep, len(groups))
    part = np.full(len(groups), -1, np.int64)
    if halves:
        sizes = np.diff(offsets)
        split_at = offsets[:-1][sizes > 1] + (sizes[sizes > 1] + 1) // 2
        part = np.repeat(np.where(sizes > 1, 0, -1), np.where(sizes > 1, 2, 1))
        part[np.flatnonzero(part == 0)[1::2]] = 1  # each split image: part 0, then part 1
        offsets = np.sort(np.concatenate([offsets, split_at]))
        groups = np.repeat(groups, np.where(sizes > 1, 2, 1))

    def build(picked: list[tuple[Path, int, dict]], e: int) -> RawExample:
        url = picked[0][2]["image_url"]
        image, size = url, None
        if folder is not None:
            image = find_image_file(folder, url_hash(url))
            if image is None:
                raise PixMoError(f"{dataset}: the image of {url} left {folder} after the table was opened")
            size = image_size(image)
        if needs_size and size is None:
            raise PixMoError(f"{picked[0][0]}: {dataset} points need the images (pass image_dir with the downloaded "
                             "images) to convert coordinates to pixels")
        anns = [a for file, i, row in picked for a in annotations(file, i, row, size)]
        key = url if part[e] < 0 else f"{url}#{part[e]}"
        return RawExample(image=image, annotations=anns, image_size=size, source=str(picked[0][0]), id=key)

    return LazyExamples(rows, order, offsets, build)


# ---------------------------------------------------------------------------------------------- readers
def read_cap(path, image_dir=None, transcripts: bool = False, split=None, n_val=None) -> LazyExamples:
    """Captions only by default (fine-tuning); `transcripts=True` adds every transcript (pre-training draws one)."""
    def annotations(file, i, row, size):
        out = [Annotation(kind="caption", answer=row["caption"], style="long_caption")]
        if transcripts:
            out += [Annotation(kind="transcript", answer=t, style="transcript") for t in row.get("transcripts") or []]
        return out
    return url_examples("pixmo-cap", path, image_dir, ["image_url", "caption"], annotations, split=split, n_val=n_val)


def read_ask_model_anything(path, image_dir=None, split=None, n_val=None) -> LazyExamples:
    def annotations(file, i, row, size):
        return [Annotation(kind="qa", question=row["question"], answer=row["answer"], style="user_qa")]
    return url_examples("pixmo-ask-model-anything", path, image_dir, ["image_url", "question", "answer"],
                        annotations, split=split, n_val=n_val)


def read_cap_qa(path, image_dir=None, split=None, n_val=None) -> LazyExamples:
    def annotations(file, i, row, size):
        msgs = row["messages"]
        if not isinstance(msgs, list) or len(msgs) < 2 or len(msgs) % 2:
            raise PixMoError(f"{file}: pixmo-cap-qa row {i}: 'messages' must be an even-length list of "
                             "alternating user/assistant strings")
        turns = [{"role": "user" if k % 2 == 0 else "assistant", "content": m} for k, m in enumerate(msgs)]
        return [Annotation(kind="messages", messages=turns, style="synthetic_qa")]
    return url_examples("pixmo-cap-qa", path, image_dir, ["image_url", "messages"], annotations, split=split,
                        n_val=n_val)


COLLECTION_SUBSETS = {"basic": "pointing", "high_frequency": "counting"}


def read_points(path, image_dir=None, mode: str = "pointing", subset: str | None = None,
                point_scale: str = "percent", eval_set: bool = False, split=None, n_val=None,
                exclude: str | Path | None = None) -> LazyExamples:
    """One annotation per label row: `mode="pointing"` -> point annotations, `"point_count"` -> count
    annotations (we do not reproduce the released name/style inversion, §7.5). `subset` = "basic" keeps
    `collection_method == "pointing"` rows, "high_frequency" keeps "counting" rows, None keeps all.
    `exclude`: a table (pixmo-points-eval) whose images are left out."""
    name = "pixmo-points-eval" if eval_set else "pixmo-points"
    if mode not in ("pointing", "point_count"):
        raise ValueError(f"unknown mode {mode!r}; expected 'pointing' or 'point_count'")
    if subset is not None and subset not in COLLECTION_SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; expected one of {sorted(COLLECTION_SUBSETS)} or None")
    rows = _open(path, name, ["image_url", "label", "points"], None if eval_set else "train")
    method = rows.column("collection_method")
    if not pa.types.is_null(method.type):
        known = pa.array(sorted(COLLECTION_SUBSETS.values()))
        bad = pc.and_(pc.invert(pc.is_in(method, value_set=known)), pc.is_valid(method))
        if pc.any(bad).as_py():
            first = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
            file, i, row = rows.take(np.array([first]))[0]
            raise PixMoError(f"{file}: {name} row {i} has unknown collection_method {row['collection_method']!r}; "
                             f"expected one of {sorted(COLLECTION_SUBSETS.values())}")
    keep = None
    if subset is not None:
        wanted = pc.equal(method, COLLECTION_SUBSETS[subset]) if not pa.types.is_null(method.type) else None
        keep = (np.zeros(len(rows), bool) if wanted is None
                else np.asarray(wanted.fill_null(False).to_numpy(zero_copy_only=False), bool))

    def annotations(file, i, row, size):
        pts = to_pixels(xy_list(row["points"], file, name), size, point_scale, file, name)
        meta = {"count": row["count"]} if row.get("count") is not None else {}
        if eval_set and row.get("masks") is not None:
            meta["masks"] = row["masks"]
        return [Annotation(kind="point" if mode == "pointing" else "count", label=str(row["label"]).lower(),
                           points=pts, style=mode, meta=meta)]
    return url_examples(name, path, image_dir, [], annotations, split=split, n_val=n_val, keep_rows=keep,
                        exclude=excluded_urls(exclude), needs_size=True, rows=rows)


def read_points_eval(path, image_dir=None, point_scale: str = "percent") -> LazyExamples:
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


def read_point_explanations(path, image_dir=None, split=None, n_val=None, split_groups: bool = True) -> LazyExamples:
    """One image's questions, split in two examples when it has several (the first ceil(n/2), then the rest),
    as the released loader does; this also doubles what the mixture rate counts for such images. Rows without a
    parsed response are dropped (as released)."""
    name = "pixmo-point-explanations"
    rows = _open(path, name, ["image_url", "question", "parsed_response", "alt_text", "inline_text", "points"], "train")
    keep = np.asarray(pc.is_valid(rows.column("parsed_response")).to_numpy(zero_copy_only=False), bool)

    def annotations(file, i, row, size):
        answer = explanation_answer(row["parsed_response"], row["alt_text"] or [], row["inline_text"] or [],
                                    row["points"] or [], file, i)
        return [Annotation(kind="qa", question=row["question"], answer=answer, style="point_qa")]
    return url_examples(name, path, image_dir, [], annotations, split=split, n_val=n_val, keep_rows=keep,
                        halves=split_groups, rows=rows)


def _docs_questions(value: Any, file: Path, row: int) -> list[tuple[str, str]]:
    if isinstance(value, dict) and "question" in value and "answer" in value:
        return list(zip(value["question"], value["answer"]))
    if isinstance(value, list) and all(isinstance(q, dict) and "question" in q and "answer" in q for q in value):
        return [(q["question"], q["answer"]) for q in value]
    raise PixMoError(f"{file}: pixmo-docs row {row}: 'questions' must be a list of {{question, answer}} "
                     "or {question: [...], answer: [...]}")


def row_examples(rows: TableSet, build: Callable[[Path, int, dict], RawExample],
                 keep: np.ndarray | None = None) -> LazyExamples:
    """One example per (kept) row."""
    order = np.flatnonzero(keep) if keep is not None else np.arange(len(rows))
    return LazyExamples(rows, order, np.arange(len(order) + 1), lambda picked, e: build(*picked[0]))


def read_docs(path, config: str | None = None, split: str | None = None) -> LazyExamples:
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
    rows = _open(path, "pixmo-docs", ["image", "questions"], split)

    def build(file: Path, i: int, row: dict) -> RawExample:
        image = embedded_image(row["image"], file)
        if image is None:
            raise PixMoError(f"{file}: pixmo-docs row {i} has no image bytes or readable image path")
        anns = [Annotation(kind="qa", question=q, answer=a, style=f"pixmo_docs_{config}")
                for q, a in _docs_questions(row["questions"], file, i)]
        return RawExample(image=image, annotations=anns, image_size=image_size(image), source=str(file),
                          id=str(row.get("image_id") or f"{file.name}:{i}"))
    return row_examples(rows, build)


def read_count(path, image_dir=None, mode: str = "pointing", point_scale: str = "pixels",
               split: str | None = None) -> LazyExamples:
    """PixMo-Count: one label per row, points in pixels. Validation/test rows have no points, only the
    verified `count`: they become count annotations whose `answer` is the number (evaluation only)."""
    name = "pixmo-count"
    if mode not in ("pointing", "point_count"):
        raise ValueError(f"unknown mode {mode!r}; expected 'pointing' or 'point_count'")

    def annotations(file, i, row, size):
        raw = xy_list(row.get("points"), file, name)
        label = str(row["label"]).lower()
        if not raw and int(row["count"]) > 0:  # eval split: count only
            return [Annotation(kind="count", label=label, answer=str(int(row["count"])), style="point_count",
                               metric="exact", meta={"count": int(row["count"])})]
        pts = to_pixels(raw, size, point_scale, file, name)
        return [Annotation(kind="point" if mode == "pointing" else "count", label=label, points=pts, style=mode,
                           meta={"count": int(row["count"])})]
    return url_examples(name, path, image_dir, ["image_url", "label", "count"], annotations, file_split=split)


def clock_text(row: dict) -> str:
    """The target time: the v2 `text` column when present, else `H:MM` (+ `:SS`) from hour/minute/second."""
    if row.get("text"):
        return str(row["text"])
    text = f"{int(row['hour'])}:{int(row['minute']):02d}"
    return text + f":{int(row['second']):02d}" if row.get("second") is not None else text


def read_clocks(path, image_dir=None) -> LazyExamples:
    name = "pixmo-clocks"
    rows = TableSet.open(table_files(path))
    folder = Path(image_dir) if image_dir is not None else None
    keep = np.ones(len(rows), bool)
    for f, start in zip(rows.files, rows.offsets):
        if "image" in f.columns:
            continue
        if folder is None:
            raise PixMoError(f"{f.path}: {name} rows carry no image; render them and pass image_dir "
                             "(files named <example_id>.png)")
        stems = _image_stems(folder)
        ids = iter_strings(f.column("example_id").cast(pa.string()))
        keep[start:start + f.n] = np.fromiter((i is not None and i in stems for i in ids), bool, f.n)
    if not keep.all():
        log.warning("%s: dropped %d row(s) without an image", name, int((~keep).sum()))

    def build(file: Path, i: int, row: dict) -> RawExample:
        if not row.get("text") and not all(row.get(k) is not None for k in ("hour", "minute")):
            raise PixMoError(f"{file}: {name} row {i} needs 'text' or 'hour' and 'minute' columns; it has {sorted(row)}")
        image = embedded_image(row.get("image"), file)
        if image is None and folder is not None and row.get("example_id") is not None:
            image = find_image_file(folder, str(row["example_id"]))
        if image is None:
            raise PixMoError(f"{file}: {name} row {i} has no image")
        ann = Annotation(kind="qa", question=CLOCK_PROMPT, answer=clock_text(row), style="clocks", metric="clock")
        return RawExample(image=image, annotations=[ann], image_size=image_size(image), source=str(file),
                          id=str(row.get("example_id", f"{file.name}:{i}")))
    return row_examples(rows, build, keep)


READERS: dict[str, Callable[..., Sequence[RawExample]]] = {
    "cap": read_cap, "ask_model_anything": read_ask_model_anything, "cap_qa": read_cap_qa, "points": read_points,
    "points_eval": read_points_eval, "point_explanations": read_point_explanations, "docs": read_docs,
    "count": read_count, "clocks": read_clocks,
}


def read_pixmo(dataset: str, path: str | Path, **options: Any) -> Sequence[RawExample]:
    """Read a PixMo subset by short name (see READERS); options go to that reader."""
    key = dataset.lower().replace("-", "_").removeprefix("pixmo_")
    if key not in READERS:
        raise ValueError(f"unknown PixMo dataset {dataset!r}; expected one of {sorted(READERS)}")
    return READERS[key](path, **options)


__all__ = ["PixMoError", "READERS", "read_pixmo", "table_files", "url_hash", "image_size"]

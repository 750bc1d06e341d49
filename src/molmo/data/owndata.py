"""The own-data format: a JSONL file, one annotation per line, image paths relative to the file; lines with
the same image become one multi-annotation example. Shapes:

    {"image": "a.jpg", "question": "What colour is the car?", "answer": "red"}        (+ "metric", "style")
    {"image": "a.jpg", "task": "point", "label": "red circle", "points": [[412.5, 220.0], [80, 310, 12]]}
    {"image": "a.jpg", "task": "count", "label": "dog", "points": []}
    {"image": "a.jpg", "task": "caption", "answer": "A long description …"}
    {"image": "a.jpg", "messages": [{"role": "user", "content": "…"}, {"role": "assistant", "content": "…"}]}

Points are [x, y] or [x, y, r] in pixels of the stored image; point/count lines may carry a "question".
The ms-swift / LLaMA-Factory shape is read too and converted to a "messages" line: {"messages": [...],
"images": ["a.png"]} (or sharegpt's "conversations" with "from": "human"/"gpt" and "value"), exactly one image,
an optional `<image>` placeholder in a user turn (Molmo puts the image first).
A line may also carry "meta" (free-form JSON, e.g. a generator's scene description) and "options" /
"answer_idx" for multiple choice.

    examples = read_own_data("train.jsonl")          # raises OwnDataError listing every bad line
    problems = validate_own_data("train.jsonl")      # ["train.jsonl:3: unknown field 'lable'", ...]
    problems = validate_own_data("train.jsonl", deep=True)   # also decode every image in full

The file is read as UTF-8 (a bad byte is reported with its line); every field is type- and range-checked here,
the one validator `data validate`, `finetune` and `eval` share, so a line that passes cannot crash training.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path

from PIL import Image

from molmo.data.example import METRICS, Annotation, RawExample
from molmo.data.formatter import DEFAULT_STYLE, EVAL_RENAMES, NEVER_PREFIX

TASKS = ("point", "count", "caption")
ALLOWED = {"image", "question", "answer", "metric", "style", "task", "label", "points", "messages", "meta",
           "options", "answer_idx", "weight", "id"}
# Style tags the recipe knows (recipe-spec §1.3): the released datasets' tags and our defaults.
STYLES = frozenset(DEFAULT_STYLE.values()) | set(EVAL_RENAMES) | NEVER_PREFIX | {
    "synthetic_qa", "point_qa", "pixmo_docs_charts", "pixmo_docs_tables", "pixmo_docs_other", "pixmo_docs_diagrams",
    "scifi_charts", "scifi_table", "scifi_document", "scifi_diagram", "vqa2", "text_vqa", "okvqa", "chart_qa",
    "doc_qa", "info_qa", "ai2_diagram", "ai2_diagram_no_letter", "a_okvqa_mc", "a_okvqa_da", "science_qa",
    "tabwmp_da", "st_qa", "tally_qa", "dv_qa", "figure_qa", "plot_qa", "clocks", "long_caption", "transcript"}


class OwnDataError(ValueError):
    """An own-data file has invalid lines; `problems` lists every one as `file:line: reason`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "\n".join(problems[:50]) + (f"\n… and {len(problems) - 50} more" if len(problems) > 50 else "")
        super().__init__(problems[0] if len(problems) == 1 else f"{len(problems)} invalid line(s):\n{shown}")


def _check_points(points, size) -> str | None:
    if not isinstance(points, list):
        return "'points' must be a list of [x, y] or [x, y, r]"
    for p in points:
        if not isinstance(p, list) or len(p) not in (2, 3) or not all(_is_number(v) for v in p):
            return f"bad point {p!r}: expected [x, y] or [x, y, r] finite numbers"
        if size is not None:
            w, h = size
            if not (0 <= p[0] <= w and 0 <= p[1] <= h):
                return f"point {p!r} lies outside the {w}x{h} image"
        if len(p) == 3 and p[2] <= 0:
            return f"point {p!r} has a non-positive radius"
    return None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _field_problem(row: dict) -> str | None:
    """Types and ranges of the optional fields, whatever the line's shape."""
    for key in ("question", "answer", "label", "style", "metric", "task"):
        if key in row and not isinstance(row[key], str):
            return f"'{key}' must be a string, got {type(row[key]).__name__}"
    if "weight" in row and not (_is_number(row["weight"]) and row["weight"] > 0):
        return f"'weight' must be a positive finite number, got {row['weight']!r}"
    if "style" in row and row["style"] not in STYLES:
        return f"unknown style {row['style']!r}; expected one of {sorted(STYLES)}"
    if "id" in row and (isinstance(row["id"], bool) or not isinstance(row["id"], (str, int))):
        return f"'id' must be a string or an integer, got {row['id']!r}"
    if "meta" in row and not isinstance(row["meta"], dict):
        return "'meta' must be a JSON object"
    options = row.get("options")
    if options is not None and (not isinstance(options, list) or len(options) < 2
                                or not all(isinstance(o, str) and o.strip() for o in options)):
        return "'options' must be a list of at least 2 non-empty strings"
    if "answer_idx" in row:
        idx = row["answer_idx"]
        if options is None:
            return "'answer_idx' needs an 'options' list"
        if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < len(options):
            return f"'answer_idx' must be an integer in 0..{len(options) - 1} for {len(options)} options, got {idx!r}"
    return None


def _line_problem(row: dict, root: Path, sizes: dict, deep: bool = False) -> str | None:
    unknown = sorted(set(row) - ALLOWED)
    if unknown:
        return f"unknown field(s) {unknown}; allowed: {sorted(ALLOWED)}"
    if not isinstance(row.get("image"), str) or not row["image"]:
        return "missing 'image' (a path relative to the JSONL file)"
    problem = _field_problem(row)
    if problem:
        return problem
    path = root / row["image"]
    if row["image"] not in sizes:
        try:
            with Image.open(path) as im:
                if deep:
                    im.load()  # decode every byte: a truncated file fails here, not mid-training
                sizes[row["image"]] = im.size
        except FileNotFoundError:
            sizes[row["image"]] = None
            return f"image file {row['image']!r} not found"
        except Exception as e:  # noqa: BLE001 - any unreadable image
            sizes[row["image"]] = None
            return f"image file {row['image']!r} is not a readable image ({e.__class__.__name__})"
    size = sizes[row["image"]]
    if size is None:
        return f"image file {row['image']!r} is missing or unreadable"
    if "metric" in row and row["metric"] not in METRICS:
        return f"unknown metric {row['metric']!r}; expected one of {list(METRICS)}"
    task = row.get("task")
    if task is not None:
        if task not in TASKS:
            return f"unknown task {task!r}; expected one of {list(TASKS)}"
        if task in ("point", "count"):
            if not isinstance(row.get("label"), str) or not row["label"].strip():
                return f"'{task}' lines need a non-empty 'label'"
            if "points" not in row:
                return f"'{task}' lines need 'points' (use [] when the object is absent)"
            return _check_points(row["points"], size)
        if not isinstance(row.get("answer"), str) or not row["answer"].strip():
            return "'caption' lines need a non-empty 'answer'"
        return None
    if "messages" in row:
        msgs = row["messages"]
        if not isinstance(msgs, list) or not msgs:
            return "'messages' must be a non-empty list"
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant") or not isinstance(m.get("content"), str):
                return f"message {i} must be {{'role': 'user'|'assistant', 'content': str}}"
            if m["role"] != ("user" if i % 2 == 0 else "assistant"):
                return f"message {i} should come from the {'user' if i % 2 == 0 else 'assistant'} (turns alternate, user first)"
        return None
    if not isinstance(row.get("question"), str) or not row["question"].strip():
        return "a question/answer line needs a non-empty 'question' (or give 'task' or 'messages')"
    if not isinstance(row.get("answer"), str):
        return "a question/answer line needs an 'answer' string"
    if row.get("metric") == "mc":  # options' types and answer_idx's range: _field_problem
        options = row.get("options")
        if not isinstance(options, list) or len(options) > 7:
            return "'mc' lines need an 'options' list of 2 to 7 strings"
        if "answer_idx" not in row and row["answer"] not in options:
            return "an 'mc' line's 'answer' must be one of its 'options' (or give 'answer_idx')"
    return None


SWIFT_ROLES = {"user": "user", "assistant": "assistant", "human": "user", "gpt": "assistant"}
IMAGE_PLACEHOLDER = "<image>"


def from_swift(row: dict) -> tuple[dict, str | None]:
    """An ms-swift / LLaMA-Factory line -> (our "messages" line, None) or (row, the problem)."""
    images = row["images"]
    if not isinstance(images, list) or not all(isinstance(i, str) and i for i in images):
        return row, "'images' must be a list of image paths"
    if len(images) != 1:
        return row, f"Molmo takes exactly one image per example; this line has {len(images)} in 'images'"
    turns = row.get("messages", row.get("conversations"))
    if not isinstance(turns, list) or not turns:
        return row, "an 'images' line needs a non-empty 'messages' (or 'conversations') list"
    messages = []
    for i, m in enumerate(turns):
        role = SWIFT_ROLES.get(m.get("role", m.get("from"))) if isinstance(m, dict) else None
        content = m.get("content", m.get("value")) if isinstance(m, dict) else None
        if role is None or not isinstance(content, str):
            return row, (f"message {i} must be {{'role': 'user'|'assistant', 'content': str}} (a system message "
                         f"is not supported: Molmo has no system prompt)")
        placeholders = content.count(IMAGE_PLACEHOLDER)
        if placeholders and (role != "user" or placeholders > 1):
            return row, f"message {i}: one {IMAGE_PLACEHOLDER} placeholder may appear, in a user turn"
        messages.append({"role": role, "content": content.replace(IMAGE_PLACEHOLDER, "").strip()})
    rest = {k: v for k, v in row.items() if k not in ("images", "messages", "conversations")}
    return {**rest, "image": images[0], "messages": messages}, None


def _lines(path: Path):
    """(line number, text or None, problem) for each line, decoded as UTF-8 line by line."""
    for n, raw in enumerate(path.read_bytes().splitlines(), 1):
        try:
            yield n, raw.decode("utf-8-sig" if n == 1 else "utf-8"), None  # a BOM is not part of the JSON
        except UnicodeDecodeError as e:
            yield n, None, (f"not valid UTF-8: byte 0x{raw[e.start]:02x} at column {e.start + 1} "
                            f"(save the file as UTF-8)")


def _parse(path: Path, deep: bool = False) -> tuple[list[tuple[int, dict]], list[str]]:
    rows, problems, sizes = [], [], {}
    if path.is_dir():
        hint = f" (e.g. {path / 'data.jsonl'})" if (path / "data.jsonl").is_file() else ""
        raise OwnDataError([f"{path} is a folder; give the own-data JSONL file{hint}"])
    if not path.is_file():
        raise OwnDataError([f"{path}: no such file"])
    with open(path, "rb") as f:
        if b"\0" in f.read(8192):
            raise OwnDataError([f"{path}: a binary file, not own-data JSONL (UTF-8 text, one JSON object per line)"])
    for n, line, bad in _lines(path):
        if bad:
            problems.append(f"{path}:{n}: {bad}")
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{path}:{n}: invalid JSON ({e.msg})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{path}:{n}: each line must be a JSON object")
            continue
        if "images" in row:
            row, problem = from_swift(row)
            if problem:
                problems.append(f"{path}:{n}: {problem}")
                continue
        problem = _line_problem(row, path.parent, sizes, deep)
        if problem:
            problems.append(f"{path}:{n}: {problem}")
        else:
            row["_size"] = sizes[row["image"]]
            rows.append((n, row))
    if not rows and not problems:
        problems.append(f"{path}: no annotation lines")
    return rows, problems


def validate_own_data(path: str | Path, deep: bool = False) -> list[str]:
    try:
        return _parse(Path(path), deep)[1]
    except OwnDataError as e:
        return e.problems


def row_to_annotation(row: dict) -> Annotation:
    task = row.get("task")
    common = dict(style=row.get("style"), metric=row.get("metric"), weight=float(row.get("weight", 1.0)),
                  meta=row.get("meta") or {}, question=row.get("question"))
    if task in ("point", "count"):
        return Annotation(kind=task, label=row["label"], points=row["points"], **common)
    if task == "caption":
        return Annotation(kind="caption", answer=row["answer"], **common)
    if "messages" in row:
        return Annotation(kind="messages", messages=row["messages"], **common)
    if row.get("metric") == "mc":
        return Annotation(kind="mc", answer=row["answer"], options=row["options"],
                          answer_idx=row.get("answer_idx"), **common)
    return Annotation(kind="qa", answer=row["answer"], **common)


def read_own_data(path: str | Path, deep: bool = False) -> list[RawExample]:
    """Valid files only: every bad line is reported at once (OwnDataError); `deep` decodes every image."""
    path = Path(path)
    rows, problems = _parse(path, deep)
    if problems:
        raise OwnDataError(problems)
    grouped: "OrderedDict[str, list[dict]]" = OrderedDict()
    for _, row in rows:
        grouped.setdefault(row["image"], []).append(row)
    return [RawExample(image=path.parent / image, annotations=[row_to_annotation(r) for r in group],
                       image_size=tuple(group[0]["_size"]), source=str(path), id=image)
            for image, group in grouped.items()]

"""Benchmark presets and readers: the paper's 11 benchmarks plus PixMo-Points-eval and a ClockBench-style set,
read from local copies (Hugging Face parquet exports, or the official JSON files where noted), with the
paper's settings (recipe-spec §4.2): style tag, prompt, crop budget, max new tokens and metric.

Each benchmark lives in `DATA_DIR/<preset.folder>/` (any `*.parquet` below it, e.g. `data/test-00000.parquet`;
files whose name holds the preset's split are preferred). Official JSON layouts also accepted:
VQA v2 (`*questions*.json` + `*annotations*.json`), TextVQA (`TextVQA_*.json`), DocVQA / InfographicVQA
(`*.json` with a `data` list), ChartQA (`*.json` lists of `imgname` / `query` / `label`), and for the
ClockBench-style set a `data.jsonl` (`image`, `hour`, `minute`[, `second`]). Image paths are relative to the
benchmark folder or its `images/` folder; PixMo sets (which ship URLs) find images as `images/<sha256>.*`.

    items = load_benchmark("chartqa", "/data/benchmarks", limit=50)   # list[EvalItem]
    scores = BENCHMARKS["chartqa"].score(prediction, items[0].reference)
    names = expand_benchmark_names("paper11")                          # the 11 of the paper
    names = expand_benchmark_names("docvqa_val,mathvista_testmini")    # lmms-eval task names work too

Where to download each benchmark from the Hub: docs/benchmark-data.md.
"""

from __future__ import annotations

import ast
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from molmo.data.formatter import multiple_choice_prompt
from molmo.text.templates import POINT_COUNT, POINTING
from molmo.eval.metrics import (anls, count_scores, clock_scores, exact_match, math_vista_score, mmmu_score,
                                multiple_choice, normalize_vqa_answer, pointing_scores, postprocess_prediction,
                                relaxed_correctness, vqa_score)
from molmo.eval.metrics.choice import LETTERS

HIGH_RES_CROPS, LOW_RES_CROPS = 36, 12
SHORT_ANSWER_TOKENS, POINT_TOKENS = 12, 192
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


class BenchmarkDataError(ValueError):
    """A benchmark folder is missing or its files do not have the expected columns."""


@dataclass(frozen=True)
class EvalItem:
    """One prompt to answer. `reference` holds what the scorer needs (answers, points, image size…)."""

    id: str
    image: Any  # path, bytes or PIL image
    prompt: str
    style: str | None
    max_new_tokens: int
    max_crops: int | None  # None: the model's own budget
    reference: dict = field(default_factory=dict, compare=False)


Scorer = Callable[[str, dict], dict[str, float | None]]
Reader = Callable[[Path, "Benchmark"], list[dict]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    folder: str
    reader: Reader  # folder -> rows: {"id", "image", "prompt", "style", "reference"}
    style: str | None  # default style tag (readers may override per row, e.g. MC vs short answer)
    prompt: str  # template; {question} / {label} filled by the reader
    max_crops: int
    max_new_tokens: int
    metric: Scorer
    headline: str  # the metric key reported as `score`
    split: str = "test"


# --------------------------------------------------------------------------------------------- file access
def _parquet_rows(folder: Path, split: str) -> list[dict]:
    import pyarrow.parquet as pq

    files = sorted(folder.rglob("*.parquet"))
    preferred = [f for f in files if split in f.name or split in f.parent.name]
    rows: list[dict] = []
    for f in preferred or files:
        rows.extend(pq.read_table(f).to_pylist())
    return rows


def _json_files(folder: Path, pattern: str = "*.json") -> list[Path]:
    return sorted(p for p in folder.rglob(pattern) if p.is_file())


def _image_ref(value: Any, folder: Path) -> Any:
    """HF image structs ({bytes, path}), raw bytes, or a path relative to the folder / its images/."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        value = value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and value:
        for candidate in (folder / value, folder / "images" / value, folder / "images" / Path(value).name):
            if candidate.is_file():
                return candidate
        raise BenchmarkDataError(f"image {value!r} not found under {folder} (or its images/ folder)")
    raise BenchmarkDataError(f"row in {folder} has no usable image ({type(value).__name__})")


def _image_by_hash(row: dict, folder: Path) -> Any:
    if row.get("image") is not None:
        return _image_ref(row["image"], folder)
    sha = row.get("image_sha256")
    if sha:
        for suffix in IMAGE_SUFFIXES:
            if (folder / "images" / f"{sha}{suffix}").is_file():
                return folder / "images" / f"{sha}{suffix}"
    raise BenchmarkDataError(f"no local image for row {row.get('image_url') or sha!r}: put it at "
                             f"{folder}/images/<image_sha256>.png (PixMo sets ship URLs only)")


def image_size_of(image: Any) -> tuple[int, int]:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.size
    with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as im:
        return im.size


def _need(row: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise BenchmarkDataError(f"{where}: rows lack column(s) {missing}; found {sorted(row)}")


def _answers(value: Any) -> list[str]:
    """List of strings from str / list[str] / VQA v2 list[{'answer': …}]."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [v["answer"] if isinstance(v, dict) else str(v) for v in value]


def _row(id_, image, prompt, style, reference) -> dict:
    return {"id": str(id_), "image": image, "prompt": prompt, "style": style, "reference": reference}


# --------------------------------------------------------------------------------------------- readers
def read_ai2d(folder: Path, b: Benchmark) -> list[dict]:
    """lmms-lab/ai2d style: question, options, answer (index or letter); optional abc_label /
    has_transparent_box columns enable the transparent / opaque split."""
    out = []
    for i, r in enumerate(_parquet_rows(folder, b.split)):
        _need(r, ("question", "options", "answer", "image"), "ai2d")
        options = list(r["options"])
        ans = str(r["answer"]).strip()
        idx = LETTERS.index(ans.upper()) if ans.isalpha() and len(ans) == 1 else int(ans)
        no_letter = bool(r.get("abc_label")) and all(len(o) == 1 for o in options)
        style = "ai2_diagram_no_letter" if no_letter else b.style
        prompt = multiple_choice_prompt(r["question"], options, letters=not no_letter)
        names = [o.upper() for o in options] if no_letter else list(LETTERS[:len(options)])
        out.append(_row(r.get("id", i), _image_ref(r["image"], folder), prompt, style,
                        {"answer_idx": idx, "option_names": names, "abc_label": bool(r.get("abc_label", False)),
                         "has_transparent_box": r.get("has_transparent_box")}))
    return out


def read_chartqa(folder: Path, b: Benchmark) -> list[dict]:
    rows = _parquet_rows(folder, b.split)
    if not rows:  # official JSON: test_human.json / test_augmented.json with imgname / query / label
        for f in _json_files(folder):
            for r in json.loads(f.read_text()):
                rows.append({"image": f"png/{r['imgname']}" if (folder / "png").is_dir() else r["imgname"],
                             "query": r["query"], "label": r["label"],
                             "human_or_machine": 0 if "human" in f.name else 1})
    out = []
    for i, r in enumerate(rows):
        _need(r, ("query", "label", "image"), "chartqa")
        out.append(_row(i, _image_ref(r["image"], folder), r["query"], b.style,
                        {"answers": _answers(r["label"]), "human": r.get("human_or_machine") in (0, None)}))
    return out


def _read_short_answer(folder: Path, b: Benchmark, question_key="question", answers_key="answers",
                       id_keys=("question_id", "questionId", "id")) -> list[dict]:
    out = []
    for i, r in enumerate(_parquet_rows(folder, b.split)):
        _need(r, (question_key, answers_key, "image"), b.name)
        id_ = next((r[k] for k in id_keys if k in r), i)
        out.append(_row(id_, _image_ref(r["image"], folder), b.prompt.format(question=r[question_key]), b.style,
                        {"answers": _answers(r[answers_key])}))
    return out


def read_vqa2(folder: Path, b: Benchmark) -> list[dict]:
    if list(folder.rglob("*.parquet")):
        return _read_short_answer(folder, b)
    qs = [f for f in _json_files(folder) if "question" in f.name.lower()]
    ans = [f for f in _json_files(folder) if "annotation" in f.name.lower()]
    if not qs or not ans:
        raise BenchmarkDataError(f"vqa2: need parquet files or official *questions*.json + *annotations*.json in {folder}")
    annotations = {a["question_id"]: a for a in json.loads(ans[0].read_text())["annotations"]}
    out = []
    for q in json.loads(qs[0].read_text())["questions"]:
        img = next((p for p in (folder / "images").glob(f"*{q['image_id']:012d}.*")), None)
        if img is None:
            raise BenchmarkDataError(f"vqa2: no image for image_id {q['image_id']} in {folder / 'images'}")
        out.append(_row(q["question_id"], img, q["question"], b.style,
                        {"answers": _answers(annotations[q["question_id"]]["answers"])}))
    return out


def read_docvqa(folder: Path, b: Benchmark) -> list[dict]:
    """DocVQA / InfographicVQA: parquet (question, answers, image) or official JSON {"data": [...]}."""
    if list(folder.rglob("*.parquet")):
        return _read_short_answer(folder, b)
    out = []
    for f in _json_files(folder):
        for r in json.loads(f.read_text()).get("data", []):
            image = r.get("image") or r.get("image_local_name")
            out.append(_row(r["questionId"], _image_ref(image, folder), r["question"], b.style,
                            {"answers": _answers(r.get("answers"))}))
    return out


def read_textvqa(folder: Path, b: Benchmark) -> list[dict]:
    if list(folder.rglob("*.parquet")):
        return _read_short_answer(folder, b)
    out = []
    for f in _json_files(folder, "TextVQA*.json"):
        for r in json.loads(f.read_text())["data"]:
            out.append(_row(r["question_id"], _image_ref(f"{r['image_id']}.jpg", folder), r["question"], b.style,
                            {"answers": _answers(r["answers"])}))
    return out


SHORT_ANSWER_INSTRUCTION = "Please answer directly with a single word or number."


def read_realworldqa(folder: Path, b: Benchmark) -> list[dict]:
    """Short-answer items keep only the first line (instruction removed) with `vqa2`; MC items keep the full
    official prompt with `a_okvqa_mc`."""
    out = []
    for i, r in enumerate(_parquet_rows(folder, b.split)):
        _need(r, ("question", "answer", "image"), "realworldqa")
        q = r["question"]
        if SHORT_ANSWER_INSTRUCTION in q:
            prompt, style, qtype = q.split("\n")[0].strip(), "vqa2", "short_answer"
        else:
            prompt, style, qtype = q, "a_okvqa_mc", "multiple_choice"
        out.append(_row(r.get("id", i), _image_ref(r["image"], folder), prompt, style,
                        {"answer": str(r["answer"]), "question_type": qtype}))
    return out


def read_mmmu(folder: Path, b: Benchmark) -> list[dict]:
    out = []
    for i, r in enumerate(_parquet_rows(folder, b.split)):
        _need(r, ("question", "options", "answer", "question_type", "image_1"), "mmmu")
        options = ast.literal_eval(r["options"]) if isinstance(r["options"], str) else list(r["options"] or [])
        if r["question_type"] == "multiple-choice":
            prompt, style = multiple_choice_prompt(r["question"], options), "a_okvqa_mc"
        else:
            prompt, style = r["question"], "vqa2"
        answer = r["answer"]
        if isinstance(answer, str) and answer.startswith("["):
            answer = ast.literal_eval(answer)
        out.append(_row(r.get("id", i), _image_ref(r["image_1"], folder), prompt, style,
                        {"answer": answer, "question_type": r["question_type"], "options": options}))
    return out


def _mathvista_question(query: str) -> str:
    text = query.split("Question:", 1)[1] if "Question:" in query else query
    return text.split("Hint:", 1)[0].strip()


def read_mathvista(folder: Path, b: Benchmark) -> list[dict]:
    out = []
    for i, r in enumerate(_parquet_rows(folder, b.split)):
        _need(r, ("question", "answer", "question_type", "answer_type"), "mathvista")
        choices = list(r["choices"]) if r.get("choices") is not None else None
        question = _mathvista_question(r.get("query") or r["question"])
        if r["question_type"] == "multi_choice" and choices:
            prompt, style = multiple_choice_prompt(question, choices), "a_okvqa_mc"
        else:
            prompt, style = question, "vqa2"
        image = r.get("decoded_image") or r.get("image")
        out.append(_row(r.get("pid", i), _image_ref(image, folder), prompt, style,
                        {"answer": str(r["answer"]), "question_type": r["question_type"],
                         "answer_type": r["answer_type"], "choices": choices, "precision": r.get("precision"),
                         "question": question}))
    return out


def _point_count_prompt(label: str, index: int, template: str) -> str:
    if template != "random":
        return template.format(label=label)
    return random.Random(index).choice(POINT_COUNT).format(label=label)


def read_countbench(folder: Path, b: Benchmark) -> list[dict]:
    """CountBenchQA (vikhyatk/CountBenchQA columns image, question, number); rows without an image skipped."""
    out = []
    for i, r in enumerate(_parquet_rows(folder, b.split)):
        _need(r, ("question", "number"), "countbenchqa")
        if not r.get("image"):
            continue
        out.append(_row(i, _image_ref(r["image"], folder), r["question"], b.style, {"count": int(r["number"])}))
    return out


def read_pixmo_count(folder: Path, b: Benchmark) -> list[dict]:
    out = []
    for i, r in enumerate(_parquet_rows(folder, b.split)):
        _need(r, ("label", "count"), "pixmo-count")
        out.append(_row(i, _image_by_hash(r, folder), _point_count_prompt(r["label"], i, b.prompt), b.style,
                        {"count": int(r["count"])}))
    return out


def read_pixmo_points_eval(folder: Path, b: Benchmark) -> list[dict]:
    """GT points are stored 0–100 (recipe-spec §7.1–2); converted to pixels here (the corrected behaviour)."""
    out = []
    for i, r in enumerate(_parquet_rows(folder, b.split)):
        _need(r, ("label", "points"), "pixmo-points-eval")
        image = _image_by_hash(r, folder)
        w, h = image_size_of(image)
        points = [[p["x"] / 100 * w, p["y"] / 100 * h] for p in r["points"]]
        label = r["label"].lower()
        prompt = random.Random(i).choice(POINTING).format(label=label) if b.prompt == "random" else b.prompt.format(label=label)
        out.append(_row(i, image, prompt, b.style, {"points": points, "masks": r.get("masks"), "image_size": [w, h]}))
    return out


def read_clockbench(folder: Path, b: Benchmark) -> list[dict]:
    rows = _parquet_rows(folder, b.split)
    if not rows:
        for f in sorted(folder.rglob("*.jsonl")):
            rows.extend(json.loads(line) for line in f.read_text().splitlines() if line.strip())
    out = []
    for i, r in enumerate(rows):
        _need(r, ("image", "hour", "minute"), "clockbench")
        out.append(_row(r.get("id", i), _image_ref(r["image"], folder), b.prompt, b.style,
                        {"hour": int(r["hour"]), "minute": int(r["minute"]), "second": int(r.get("second", -1))}))
    return out


# --------------------------------------------------------------------------------------------- scorers
def _clean(prediction: str) -> str:
    return postprocess_prediction(prediction)


def score_mc(pred: str, ref: dict) -> dict:
    scores = {"mc_accuracy": float(multiple_choice(_clean(pred), ref["answer_idx"], ref["option_names"]))}
    if ref.get("has_transparent_box") is not None:  # AI2D split: label questions count in their own copy only
        for split in ("transparent", "opaque"):
            own = (split == "transparent") == bool(ref["has_transparent_box"])
            scores[f"mc_ai2d_{split}"] = scores["mc_accuracy"] if (own or not ref["abc_label"]) else None
    return scores


def score_relaxed(pred: str, ref: dict) -> dict:
    p = _clean(pred)
    return {"relaxed_correctness": float(relaxed_correctness(p, ref["answers"])),
            "em": float(exact_match(p, ref["answers"]))}


def score_vqa(pred: str, ref: dict) -> dict:
    return {"vqa_score": vqa_score(_clean(pred), ref["answers"])}


def score_anls(pred: str, ref: dict) -> dict:
    return {"anls": anls(_clean(pred), ref["answers"])}


def score_realworldqa(pred: str, ref: dict) -> dict:
    p = _clean(pred)
    if ref["question_type"] == "multiple_choice":
        ok = multiple_choice(p, LETTERS.index(ref["answer"].strip().upper()), list("ABCD"))
    else:
        ok = normalize_vqa_answer(p) == normalize_vqa_answer(ref["answer"])
    return {"accuracy": float(ok)}


def score_mmmu(pred: str, ref: dict) -> dict:
    rng = random.Random(42)
    return {"accuracy": mmmu_score(_clean(pred), ref["answer"], ref["question_type"], ref["options"], rng)}


def score_mathvista(pred: str, ref: dict) -> dict:
    precision = ref.get("precision")
    precision = int(precision) if isinstance(precision, float) and precision.is_integer() else precision
    return {"accuracy": float(math_vista_score(_clean(pred), ref["answer"], ref["question_type"],
                                               ref["answer_type"], ref["choices"], precision, ref["question"]))}


def score_count(pred: str, ref: dict) -> dict:
    s = count_scores(pred, ref["count"])
    return {"correct": float(s["correct"]), "close": float(s["close"]), "valid": float(s["valid"])}


def score_pointing(pred: str, ref: dict) -> dict:
    masks = [np.asarray(m, bool) for m in ref["masks"]] if ref.get("masks") else None
    radii = [p[2] if len(p) > 2 else None for p in ref["points"]]
    return pointing_scores(pred.strip(), [p[:2] for p in ref["points"]], tuple(ref["image_size"]), masks=masks,
                           radii=None if masks is not None else radii)


def score_clockbench(pred: str, ref: dict) -> dict:
    s = clock_scores(pred, ref["hour"], ref["minute"], ref["second"], bench=True)
    return {"overall_close": float(s["overall_close"]), "overall_exact": float(s["overall_exact"])}


# --------------------------------------------------------------------------------------------- presets
def _b(name, folder, reader, style, prompt, crops, tokens, metric, headline, split="test") -> Benchmark:
    return Benchmark(name, folder, reader, style, prompt, crops, tokens, metric, headline, split)


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in [
    _b("ai2d", "ai2d", read_ai2d, "ai2_diagram", "{question}", HIGH_RES_CROPS, SHORT_ANSWER_TOKENS, score_mc,
       "mc_accuracy"),
    _b("chartqa", "chartqa", read_chartqa, "chart_qa", "{question}", HIGH_RES_CROPS, SHORT_ANSWER_TOKENS,
       score_relaxed, "relaxed_correctness"),
    _b("vqav2", "vqav2", read_vqa2, "vqa2", "{question}", HIGH_RES_CROPS, SHORT_ANSWER_TOKENS, score_vqa,
       "vqa_score", split="validation"),
    _b("docvqa", "docvqa", read_docvqa, "doc_qa", "{question}", HIGH_RES_CROPS, SHORT_ANSWER_TOKENS, score_anls,
       "anls", split="validation"),
    _b("infovqa", "infovqa", read_docvqa, "info_qa", "{question}", HIGH_RES_CROPS, SHORT_ANSWER_TOKENS,
       score_anls, "anls", split="validation"),
    _b("textvqa", "textvqa", read_textvqa, "text_vqa", "{question}", HIGH_RES_CROPS, SHORT_ANSWER_TOKENS,
       score_vqa, "vqa_score", split="validation"),
    _b("realworldqa", "realworldqa", read_realworldqa, "vqa2", "{question}", HIGH_RES_CROPS, SHORT_ANSWER_TOKENS,
       score_realworldqa, "accuracy"),
    _b("mmmu", "mmmu", read_mmmu, "vqa2", "{question}", HIGH_RES_CROPS, SHORT_ANSWER_TOKENS, score_mmmu,
       "accuracy", split="validation"),
    _b("mathvista", "mathvista", read_mathvista, "vqa2", "{question}", HIGH_RES_CROPS, SHORT_ANSWER_TOKENS,
       score_mathvista, "accuracy", split="testmini"),
    _b("countbenchqa", "countbenchqa", read_countbench, "point_count", "{question}", LOW_RES_CROPS, POINT_TOKENS,
       score_count, "correct"),
    # 192 tokens: the paper's setting (the released code's 12 truncates point-then-count answers, spec §7.3)
    _b("pixmo-count", "pixmo-count", read_pixmo_count, "point_count", "random", LOW_RES_CROPS, POINT_TOKENS,
       score_count, "correct"),
    _b("pixmo-points-eval", "pixmo-points-eval", read_pixmo_points_eval, "pointing", "random", LOW_RES_CROPS,
       POINT_TOKENS, score_pointing, "f1"),
    _b("clockbench", "clockbench", read_clockbench, "clocks", "What time is being shown?", LOW_RES_CROPS,
       SHORT_ANSWER_TOKENS, score_clockbench, "overall_close"),
]}

PAPER11 = ("ai2d", "chartqa", "vqav2", "docvqa", "infovqa", "textvqa", "realworldqa", "mmmu", "mathvista",
           "countbenchqa", "pixmo-count")
SUITES = {"paper11": PAPER11, "all": tuple(BENCHMARKS)}
# lmms-eval task names -> ours (same data and split; docs/benchmark-data.md says which Hub dataset to fetch).
LMMS_EVAL_ALIASES = {
    "ai2d": "ai2d", "chartqa": "chartqa", "vqav2_val": "vqav2", "docvqa_val": "docvqa", "infovqa_val": "infovqa",
    "textvqa_val": "textvqa", "realworldqa": "realworldqa", "mmmu_val": "mmmu", "mathvista_testmini": "mathvista",
    "mathvista_testmini_format": "mathvista", "mathvista_testmini_solution": "mathvista", "countbench": "countbenchqa",
}
# lmms-eval tasks on splits without public answers: scored by a server, not here.
_HIDDEN_SPLITS = {"vqav2_test": "vqav2_val", "docvqa_test": "docvqa_val", "infovqa_test": "infovqa_val",
                  "textvqa_test": "textvqa_val", "mmmu_test": "mmmu_val", "mathvista_test": "mathvista_testmini"}


def expand_benchmark_names(spec: str) -> list[str]:
    """"paper11", "chartqa,docvqa" … -> benchmark names (unknown names raise with the known list)."""
    names: list[str] = []
    for part in (p.strip().lower() for p in spec.split(",") if p.strip()):
        if part in SUITES:
            names.extend(SUITES[part])
        elif part in BENCHMARKS:
            names.append(part)
        elif part in LMMS_EVAL_ALIASES:
            names.append(LMMS_EVAL_ALIASES[part])
        elif part in _HIDDEN_SPLITS:
            raise ValueError(f"lmms-eval's {part!r} has no public answers to score locally; use "
                             f"{_HIDDEN_SPLITS[part]!r} (molmo's {LMMS_EVAL_ALIASES[_HIDDEN_SPLITS[part]]!r})")
        else:
            raise ValueError(f"unknown benchmark {part!r}; known: {sorted(BENCHMARKS)} and suites {sorted(SUITES)}")
    if not names:
        raise ValueError("no benchmark named")
    return list(dict.fromkeys(names))


def load_benchmark(name: str, data_dir: str | Path, limit: int | None = None,
                   max_crops: int | None = None) -> list[EvalItem]:
    b = BENCHMARKS[name]
    folder = Path(data_dir) / b.folder
    if not folder.is_dir():
        raise BenchmarkDataError(f"benchmark {name!r}: folder {folder} does not exist (expected parquet/JSON files there)")
    rows = b.reader(folder, b)
    if not rows:
        raise BenchmarkDataError(f"benchmark {name!r}: no rows found in {folder}")
    rows = rows[:limit] if limit else rows
    return [EvalItem(id=r["id"], image=r["image"], prompt=r["prompt"], style=r["style"],
                     max_new_tokens=b.max_new_tokens, max_crops=max_crops or b.max_crops, reference=r["reference"])
            for r in rows]


def paper_average(results: dict[str, dict]) -> float | None:
    """Plain mean of the 11 headline scores (None unless all 11 were run)."""
    if not all(n in results for n in PAPER11):
        return None
    return float(np.mean([results[n]["score"] for n in PAPER11]))

"""Evaluate a model on benchmarks or on an own-data JSONL: batched prediction through a `Predictor`,
resumable (every prediction is appended to OUT/predictions.jsonl under its key `bench::item id`; a rerun
skips keys already there), then scoring into OUT/metrics.json and a report page OUT/report.html.

Own-data groups (one object each in metrics.json):
- `point`  : pointing precision / recall / F1; a point's match radius is its `r` when given, else 5 % of
             the image diagonal (`pointing.DEFAULT_RADIUS_FRACTION`);
- `count`  : count accuracy from point-then-count answers (GT = number of points);
- `clock`  : question/answer lines with metric `clock` (answer "H:MM[:SS]"), PixMo-Clocks mode;
- `caption`: caption F1 (the reference is `meta.facts` when a generator left them, else the answer);
- `qa`     : every other question/answer line scored with its own metric (default `vqa`; with one reference
             VQA accuracy is the VQA-normalised exact match), `score` = their mean.

    predictor = MolmoPredictor("path/to/checkpoint")
    metrics = evaluate_own_data("held_out.jsonl", predictor, "out/")
    metrics = evaluate_benchmarks(["chartqa"], "/data/benchmarks", predictor, "out/", limit=100)
"""

from __future__ import annotations

import dataclasses

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from molmo.data.formatter import DEFAULT_STYLE, multiple_choice_prompt
from molmo.data.owndata import read_own_data
from molmo.eval.benchmarks import (BENCHMARKS, POINT_TOKENS, EvalItem, expand_benchmark_names,
                                   load_benchmark, paper_average)
from molmo.eval.caption_f1 import ExactJudge, Judge, caption_f1
from molmo.eval.metrics import anls, clock_scores, count_scores, exact_match, multiple_choice, pointing_scores
from molmo.eval.metrics import relaxed_correctness, vqa_score
from molmo.eval.metrics.choice import LETTERS
from molmo.eval.metrics.text import postprocess_prediction
from molmo.eval.report import ReportSample, write_report
from molmo.text.templates import CAPTION, POINT_COUNT, POINTING, plural_label

QA_MAX_NEW_TOKENS = 32
CAPTION_MAX_NEW_TOKENS = 448  # the captioning default of the released evaluation
REPORT_SAMPLES_PER_GROUP = 12
PREDICTIONS_FILE, METRICS_FILE, REPORT_FILE = "predictions.jsonl", "metrics.json", "report.html"


class Predictor(Protocol):
    def predict(self, items: Sequence[EvalItem]) -> list[str]: ...


class MolmoPredictor:
    """Wraps `molmo.api.Molmo.from_pretrained(model).ask_many(...)`; items of one call are grouped by
    (style, max_new_tokens, max_crops) since those are per-call settings there. `should_stop`: the generation's
    per-step stop rule (molmo.model.generation.generate), set by sharded multi-process evaluation."""

    seed: int | None = None
    should_stop: Callable[[bool], bool] | None = None

    def __init__(self, model: str | Path | None = None, seed: int | None = None, **load_kwargs):
        from molmo.api import Molmo  # imported lazily: loading weights is only needed for real runs

        self.model = Molmo.from_pretrained(model, **load_kwargs) if model else Molmo.from_pretrained(**load_kwargs)
        self.seed = seed

    def predict(self, items: Sequence[EvalItem]) -> list[str]:
        out: list[str | None] = [None] * len(items)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, it in enumerate(items):
            groups[(it.style, it.max_new_tokens, it.max_crops)].append(i)
        optional = {k: v for k, v in (("seed", self.seed), ("should_stop", self.should_stop)) if v is not None}
        for (style, tokens, crops), idx in groups.items():
            answers = self.model.ask_many([items[i].image for i in idx], [items[i].prompt for i in idx],
                                          style=style, max_new_tokens=tokens, max_crops=crops, **optional)
            for i, a in zip(idx, answers):
                out[i] = a.text
        return out  # type: ignore[return-value]


class BlindPredictor:
    """The blind baseline: the wrapped predictor sees a blank mid-grey image of each item's size instead of the
    image, so a score it reaches comes from the question and the language prior alone."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def predict(self, items: Sequence[EvalItem]) -> list[str]:
        from molmo.image.loading import load_image
        blank = []
        for it in items:
            size = it.reference.get("image_size") or load_image(it.image).shape[1::-1]
            blank.append(dataclasses.replace(it, image=Image.new("RGB", tuple(size), (128, 128, 128))))
        return self.predictor.predict(blank)


# ------------------------------------------------------------------------------------------- prediction
def _load_cache(path: Path) -> dict[str, str]:
    done = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                done[row["key"]] = row["prediction"]
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut short by an interruption: predicted again
    return done


def predict_all(tasks: Sequence[tuple[str, EvalItem]], predictor: Predictor, out_dir: Path,
                batch_size: int = 8) -> dict[str, str]:
    """Predictions for every (key, item), reusing and extending OUT/predictions.jsonl."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    cache_path = out_dir / PREDICTIONS_FILE
    done = _load_cache(cache_path)
    todo = [(k, it) for k, it in tasks if k not in done]
    with open(cache_path, "a", encoding="utf-8") as f, tqdm(total=len(tasks), initial=len(tasks) - len(todo),
                                                            desc="predict", unit="item") as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            preds = predictor.predict([it for _, it in batch])
            if len(preds) != len(batch):
                raise RuntimeError(f"predictor returned {len(preds)} answers for {len(batch)} items")
            for (key, it), pred in zip(batch, preds):
                done[key] = pred
                f.write(json.dumps({"key": key, "id": it.id, "prompt": it.prompt, "prediction": pred}) + "\n")
            f.flush()
            bar.update(len(batch))
    return done


def aggregate(scores: Iterable[dict[str, float | None]]) -> dict[str, float]:
    """Mean of each key over the items that have it (None = not counted, e.g. AI2D split copies)."""
    values: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        for k, v in s.items():
            if v is not None:
                values[k].append(float(v))
    return {k: float(np.mean(v)) for k, v in values.items()}


def _finish(out_dir: Path, metrics: dict, samples: list[ReportSample], title: str) -> dict:
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    write_report(out_dir / REPORT_FILE, metrics, samples, title)
    return metrics


# ------------------------------------------------------------------------------------------- benchmarks
def evaluate_benchmarks(names: Sequence[str] | str, data_dir: str | Path, predictor: Predictor, out: str | Path,
                        batch_size: int = 8, limit: int | None = None, max_crops: int | None = None) -> dict:
    names = expand_benchmark_names(names) if isinstance(names, str) else list(names)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded = {n: load_benchmark(n, data_dir, limit=limit, max_crops=max_crops) for n in names}
    tasks = [(f"{n}::{it.id}", it) for n, items in loaded.items() for it in items]
    preds = predict_all(tasks, predictor, out_dir, batch_size)
    metrics, samples = {}, []
    for n, items in loaded.items():
        b = BENCHMARKS[n]
        scored = [b.metric(preds[f"{n}::{it.id}"], it.reference) for it in items]
        result = aggregate(scored)
        metrics[n] = {"score": result.get(b.headline, 0.0), **result, "n": len(items)}
        for it, s in list(zip(items, scored))[:REPORT_SAMPLES_PER_GROUP]:
            ref = it.reference
            samples.append(ReportSample(n, it.id, it.image, it.prompt, preds[f"{n}::{it.id}"], _reference_text(ref),
                                        reference_points=ref.get("points", []), draw_points="points" in ref,
                                        scores=s))
    average = paper_average(metrics)
    if average is not None:
        metrics["paper11"] = {"average": average, "n_benchmarks": 11}
    return _finish(out_dir, metrics, samples, "molmo eval: " + ", ".join(names))


def _reference_text(ref: dict) -> str:
    for key in ("answers", "answer", "count"):
        if key in ref:
            return json.dumps(ref[key]) if not isinstance(ref[key], str) else ref[key]
    if "points" in ref:
        return f"{len(ref['points'])} point(s): " + json.dumps([[round(v, 1) for v in p] for p in ref["points"]])
    return json.dumps({k: v for k, v in ref.items() if k != "masks"})


# ------------------------------------------------------------------------------------------- own data
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?")


def parse_clock_answer(answer: str) -> tuple[int, int, int]:
    m = _CLOCK.match(answer)
    if not m:
        raise ValueError(f"clock answer {answer!r} is not H:MM or H:MM:SS")
    return int(m.group(1)), int(m.group(2)), int(m.group(3)) if m.group(3) else -1


def task_of(group: str, item: EvalItem) -> str:
    """The finer task an item belongs to for sampling: its group, split by metric (`qa/exact`, `qa/relaxed`)."""
    metric = item.reference.get("metric")
    return f"{group}/{metric}" if group == "qa" and metric else group


def balanced_subset(items: list[tuple[str, EvalItem]], limit: int | None = None, per_task: int | None = None
                    ) -> list[tuple[str, EvalItem]]:
    """At most `per_task` items of each task, then at most `limit` in all taken round-robin over the tasks (the
    first of each, then the second, …), so a file grouped by task still tests every task. File order is kept."""
    by_task: dict[str, list[int]] = defaultdict(list)
    for i, (group, item) in enumerate(items):
        by_task[task_of(group, item)].append(i)
    queues = [idx[:per_task] if per_task is not None else idx for idx in by_task.values()]
    chosen: list[int] = []
    for rank in range(max((len(q) for q in queues), default=0)):
        chosen += [q[rank] for q in queues if rank < len(q)]
    if limit is not None:
        chosen = chosen[:limit]
    return [items[i] for i in sorted(chosen)]


def own_data_items(path: str | Path, max_crops: int | None = None, limit: int | None = None,
                   per_task: int | None = None) -> list[tuple[str, EvalItem]]:
    """(group, item) per scorable annotation, `limit` / `per_task` spread evenly over the tasks
    (`balanced_subset`); raises OwnDataError on an invalid file. Multi-turn `messages` lines are skipped (only
    single-turn ones are scored, as `qa`). Point and count prompts use the plural label. `max_crops` None: the
    model's own budget (its preprocessor_config.json), the one it was trained with."""
    out: list[tuple[str, EvalItem]] = []
    for ex in read_own_data(path):
        for k, a in enumerate(ex.annotations):
            style = a.style or DEFAULT_STYLE[a.kind]
            ref: dict = {"image_size": list(ex.image_size)}
            if a.kind in ("point", "count"):
                templates = POINTING if a.kind == "point" else POINT_COUNT
                prompt = a.question or templates[0].format(label=plural_label(a.label))
                group, tokens = a.kind, POINT_TOKENS
                ref["points"] = a.points
            elif a.kind == "caption":
                group, prompt, tokens = "caption", a.question or CAPTION[1], CAPTION_MAX_NEW_TOKENS
                facts = a.meta.get("facts") or a.meta.get("caption_facts")
                ref["references"] = list(facts) if facts else [a.answer]
            elif a.kind == "mc":
                group, tokens = "qa", QA_MAX_NEW_TOKENS
                prompt = multiple_choice_prompt(a.question or "", a.options or [])
                idx = a.answer_idx if a.answer_idx is not None else (a.options or []).index(a.answer)
                ref.update(metric="mc", answer_idx=idx, option_names=list(LETTERS[:len(a.options or [])]),
                           answer=a.answer)
            elif a.kind == "messages":
                if len(a.messages or []) != 2:
                    continue
                group, prompt, tokens = "qa", a.messages[0]["content"], QA_MAX_NEW_TOKENS
                ref.update(metric=a.metric or "vqa", answer=a.messages[1]["content"])
            elif a.kind == "qa":
                group = "clock" if a.metric == "clock" else "qa"
                prompt, tokens = a.question or "", QA_MAX_NEW_TOKENS
                ref.update(metric=a.metric or "vqa", answer=a.answer)
                if group == "clock":
                    ref["hour"], ref["minute"], ref["second"] = parse_clock_answer(a.answer or "")
            else:
                continue
            item = EvalItem(id=f"{ex.id}#{k}", image=ex.image, prompt=prompt, style=style, max_new_tokens=tokens,
                            max_crops=max_crops, reference=ref)
            out.append((group, item))
    return balanced_subset(out, limit, per_task)


def score_qa(prediction: str, ref: dict) -> float:
    pred, answer, metric = postprocess_prediction(prediction), ref["answer"], ref["metric"]
    if metric == "mc":
        return float(multiple_choice(pred, ref["answer_idx"], ref["option_names"]))
    if metric == "vqa":
        return vqa_score(pred, [answer] * 3)  # one reference: all "annotators" agree
    if metric == "exact":
        return float(exact_match(pred, [answer]))
    if metric == "anls":
        return anls(pred, [answer])
    if metric == "relaxed":
        return float(relaxed_correctness(pred, [answer]))
    raise ValueError(f"unknown qa metric {metric!r}")


def score_own(group: str, prediction: str, ref: dict, judge: Judge) -> dict[str, float]:
    if group == "point":
        points = ref["points"]
        return pointing_scores(prediction.strip(), [p[:2] for p in points], tuple(ref["image_size"]),
                               radii=[p[2] if len(p) > 2 else None for p in points])
    if group == "count":
        return {"accuracy": float(count_scores(prediction, len(ref["points"]))["correct"])}
    if group == "clock":
        s = clock_scores(prediction, ref["hour"], ref["minute"], ref["second"])
        return {"exact": float(s["overall_exact"]), "hour": float(s.get("hour_correct", s["overall_exact"])),
                "close": float(s["overall_close"])}
    if group == "caption":
        return caption_f1(prediction, ref["references"], judge)
    score = score_qa(prediction, ref)
    return {"score": score, ref["metric"]: score}  # overall, and per metric (mixed sets report each apart)


GROUP_ORDER = ("point", "count", "clock", "caption", "qa")


def evaluate_own_data(path: str | Path, predictor: Predictor, out: str | Path, batch_size: int = 8,
                      limit: int | None = None, max_crops: int | None = None, judge: Judge | None = None,
                      per_task: int | None = None) -> dict:
    judge = judge or ExactJudge()
    grouped = own_data_items(path, max_crops=max_crops, limit=limit, per_task=per_task)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    preds = predict_all([(f"own::{it.id}", it) for _, it in grouped], predictor, out_dir, batch_size)
    per_group: dict[str, list] = defaultdict(list)
    samples = []
    for group, it in grouped:
        pred = preds[f"own::{it.id}"]
        s = score_own(group, pred, it.reference, judge)
        per_group[group].append(s)
        if len(per_group[group]) <= REPORT_SAMPLES_PER_GROUP:
            ref_text = (_reference_text(it.reference) if group in ("point", "count")
                        else json.dumps(it.reference.get("references") or it.reference.get("answer")))
            samples.append(ReportSample(group, it.id, it.image, it.prompt, pred, ref_text,
                                        reference_points=it.reference.get("points") or [],
                                        draw_points=group in ("point", "count"), scores=s))
    metrics = {g: {**aggregate(per_group[g]), "n": len(per_group[g])} for g in GROUP_ORDER if per_group[g]}
    samples.sort(key=lambda s: GROUP_ORDER.index(s.group))
    return _finish(out_dir, metrics, samples, f"molmo eval: {Path(path).name}")


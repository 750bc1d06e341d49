"""Readers for the academic datasets of the SFT mixture (recipe-spec §1.3, §2.2) from local parquet / JSON /
JSONL exports with the column names their Hugging Face (or original JSON) releases use -> `list[RawExample]`.
One table (`SPECS`) describes every dataset; a few small hooks cover the odd ones.

    examples = read_academic("chart_qa", "chartqa/train.parquet")
    examples = read_academic("figure_qa", "figureqa/qa_pairs.json", image_dir="figureqa/png")

Expected columns (first match among the aliases; `image` is the HF Image column {bytes, path}, raw bytes,
or a file name/path resolved against image_dir or the table's folder):

| name | style | columns |
|---|---|---|
| vqa2 | vqa2 | image, image_id, question, answers [{answer}] -- all questions of an image in one example |
| text_vqa | text_vqa | image, question, answers [str] |
| okvqa | okvqa | image, question, answers [{raw_answer}] |
| chart_qa | chart_qa | image, query, label [str], human_or_machine (0 human, 1 augmented: loss weights 1.477/0.523) |
| doc_qa | doc_qa | image, question, answers [str] |
| info_qa | info_qa | image, question, answers [str] |
| ai2d | ai2_diagram / ai2_diagram_no_letter | image, question, options, answer (index), [abc_label] |
| a_okvqa_mc | a_okvqa_mc | image, question, choices, correct_choice_idx |
| a_okvqa_da | a_okvqa_da | image, question, direct_answers [str] |
| science_qa | science_qa | image (rows without one are skipped), question, choices, answer (index), [hint] |
| tabmwp | tabwmp_da | image, question, answer |
| st_qa | st_qa | image (or file_path), question, answers [str] |
| tally_qa | tally_qa | image, question, answer (int) -- grouped per image |
| dv_qa | dv_qa | image, question, answer -- grouped per image |
| figure_qa | figure_qa | image (or image_index -> `<index>.png`), question_string, answer (0/1) -- grouped |
| plot_qa | plot_qa | image (or image_index), question_string, answer -- grouped |
| android_control | android_control | image, goal, step_instruction, action -- four packed prompt variants |

An annotation's `answer` is the most frequent answer (ties: the alphabetically first); all answers stay in
`Annotation.meta["answers"]`, from which training draws the most frequent one with ties broken at random
(molmo.data.formatter) and the VQA-style metrics score. ScienceQA hints are put before the
question once (the released code's `hint + "\\n" + hint` bug is not reproduced).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from molmo.data.example import Annotation, RawExample
from molmo.data.pixmo import PixMoError, embedded_image, find_image_file, image_size, table_files
from molmo.data.tables import LazyExamples, TableSet, group_rows

CHART_QA_WEIGHTS = {0: 2 * 20901 / 28299, 1: 2 * 7398 / 28299}  # human, augmented (spec §1.9)


@dataclass(frozen=True)
class AcademicSpec:
    style: str
    question: tuple[str, ...]
    answer: tuple[str, ...]
    kind: str = "qa"  # "qa" | "mc" | "android"
    metric: str = "vqa"
    answer_key: str | None = None  # answers are dicts: take this key
    options: tuple[str, ...] = ()  # mc: option list column
    group_by_image: bool = False
    image: tuple[str, ...] = ("image",)


SPECS: dict[str, AcademicSpec] = {
    "vqa2": AcademicSpec("vqa2", ("question",), ("answers",), answer_key="answer", group_by_image=True),
    "text_vqa": AcademicSpec("text_vqa", ("question",), ("answers",)),
    "okvqa": AcademicSpec("okvqa", ("question",), ("answers",), answer_key="raw_answer"),
    "chart_qa": AcademicSpec("chart_qa", ("query", "question"), ("label", "answer"), metric="relaxed"),
    "doc_qa": AcademicSpec("doc_qa", ("question",), ("answers",), metric="anls"),
    "info_qa": AcademicSpec("info_qa", ("question",), ("answers",), metric="anls"),
    "ai2d": AcademicSpec("ai2_diagram", ("question",), ("answer",), kind="mc", metric="mc", options=("options",)),
    "a_okvqa_mc": AcademicSpec("a_okvqa_mc", ("question",), ("correct_choice_idx",), kind="mc", metric="mc",
                               options=("choices",)),
    "a_okvqa_da": AcademicSpec("a_okvqa_da", ("question",), ("direct_answers",)),
    "science_qa": AcademicSpec("science_qa", ("question",), ("answer",), kind="mc", metric="mc", options=("choices",)),
    "tabmwp": AcademicSpec("tabwmp_da", ("question",), ("answer",), metric="exact"),
    "st_qa": AcademicSpec("st_qa", ("question",), ("answers",), metric="anls", image=("image", "file_path")),
    "tally_qa": AcademicSpec("tally_qa", ("question",), ("answer",), metric="exact", group_by_image=True),
    "dv_qa": AcademicSpec("dv_qa", ("question",), ("answer",), metric="exact", group_by_image=True),
    "figure_qa": AcademicSpec("figure_qa", ("question_string", "question"), ("answer",), metric="exact",
                              group_by_image=True, image=("image", "image_index")),
    "plot_qa": AcademicSpec("plot_qa", ("question_string", "question"), ("answer",), metric="exact",
                            group_by_image=True, image=("image", "image_index")),
    "android_control": AcademicSpec("android_control", ("goal",), ("action",), kind="android", metric="exact"),
}
ALIASES = {"coco_2014_vqa_multi": "vqa2", "vqa_v2": "vqa2", "textvqa": "text_vqa", "ok_vqa": "okvqa",
           "chartqa": "chart_qa", "chart_qa_weighted": "chart_qa", "docvqa": "doc_qa", "infographicvqa": "info_qa",
           "infovqa": "info_qa", "ai2_diagram": "ai2d", "ai2_diagram_v2_mix_transparent": "ai2d",
           "scienceqa": "science_qa", "science_qa_img": "science_qa", "tabwmp_da": "tabmwp", "stvqa": "st_qa",
           "st_vqa": "st_qa", "tallyqa": "tally_qa", "dvqa": "dv_qa", "figureqa": "figure_qa", "plotqa": "plot_qa"}


def _first(row: dict, names: tuple[str, ...], file: Path, dataset: str, i: int) -> Any:
    for n in names:
        if n in row:
            return row[n]
    raise PixMoError(f"{file}: {dataset} row {i} is missing column {' / '.join(repr(n) for n in names)}; "
                     f"it has {sorted(row)}")


def most_frequent(answers: list[str]) -> str:
    counts = Counter(answers)
    best = max(counts.values())
    return min(a for a, c in counts.items() if c == best)


def _answers(value: Any, key: str | None) -> list[str]:
    if isinstance(value, list):
        return [str(v[key] if key and isinstance(v, dict) else v) for v in value]
    return [str(value)]


def _resolve_image(row: dict, spec: AcademicSpec, file: Path, image_dir: Path | None, dataset: str, i: int):
    value = _first(row, spec.image, file, dataset, i)
    if spec.image[-1] == "image_index" and "image" not in row:
        value = f"{value}.png"
    if isinstance(value, (int, float)):
        value = str(value)
    if isinstance(value, str) and image_dir is not None:
        found = image_dir / value
        if not found.is_file():
            found = find_image_file(image_dir, Path(value).stem) or found
        return found if found.is_file() else None
    return embedded_image(value, file)


def _ai2d_no_letter(row: dict, options: list[str]) -> bool:
    """Options that are the image's letter labels (abc_label, >= n-1 single-letter options): no letters."""
    labels = [o for o in options if len(o.strip()) <= 2 and o.strip().isalpha()]
    return bool(row.get("abc_label")) and len(labels) >= len(options) - 1


def android_annotations(row: dict, file: Path, i: int) -> list[Annotation]:
    hl, ll, action = (_first(row, (c,), file, "android_control", i) for c in ("goal", "step_instruction", "action"))
    action = str(action)
    prompts = [(f"low_level: {ll}", action), (f"high_level: {hl} low_level: {ll}", action),
               (f"high_level: {hl}", action), (f"high_level_cot: {hl}", f"Plan: {ll} Action: {action}")]
    return [Annotation(kind="qa", question=q, answer=a, style="android_control", metric="exact") for q, a in prompts]


def _annotation(row: dict, spec: AcademicSpec, name: str, file: Path, i: int) -> Annotation:
    question = str(_first(row, spec.question, file, name, i))
    raw_answer = _first(row, spec.answer, file, name, i)
    if spec.kind == "mc":
        options = [str(o) for o in _first(row, spec.options, file, name, i)]
        idx = int(raw_answer)
        if not 0 <= idx < len(options):
            raise PixMoError(f"{file}: {name} row {i}: answer index {idx} is outside the {len(options)} options")
        style = "ai2_diagram_no_letter" if name == "ai2d" and _ai2d_no_letter(row, options) else spec.style
        if name == "science_qa" and row.get("hint"):
            question = f"{row['hint']}\n{question}"
        return Annotation(kind="mc", question=question, options=options, answer_idx=idx, answer=options[idx],
                          style=style, metric="mc")
    answers = _answers(raw_answer, spec.answer_key)
    if not answers:
        raise PixMoError(f"{file}: {name} row {i} has an empty answer list")
    if name == "tally_qa":
        answers = [str(int(float(a))) for a in answers]
    weight = 1.0
    if name == "chart_qa" and row.get("human_or_machine") is not None:
        weight = CHART_QA_WEIGHTS[int(row["human_or_machine"])]
    return Annotation(kind="qa", question=question, answer=most_frequent(answers), style=spec.style,
                      metric=spec.metric, weight=weight, meta={"answers": answers} if len(answers) > 1 else {})


def _group_keys(rows: TableSet) -> pa.ChunkedArray:
    """The image key of every row ("<file>:<image_id | image_index | image name>"; a row without one is its own
    group), computed column-wise."""
    chunks = []
    for k, f in enumerate(rows.files):
        name = next((c for c in ("image_id", "image_index", "image") if c in f.columns and
                     (pa.types.is_string(f.column(c).type) or pa.types.is_integer(f.column(c).type))), None)
        own = pa.array([f"{k}:#{i}" for i in range(f.n)], pa.string())
        if name is None:
            chunks.append(own)
            continue
        value = pc.cast(f.column(name), pa.string())
        value = value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value
        chunks.append(pc.coalesce(pc.binary_join_element_wise(pa.scalar(f"{k}:"), value, ""), own))
    return pa.chunked_array(chunks, pa.string())


def read_academic(dataset: str, path: str | Path, image_dir: str | Path | None = None) -> LazyExamples:
    """Read one academic dataset by name (SPECS keys or ALIASES). Grouped datasets give one example per image.
    Parquet tables are memory-mapped and an example's rows become a RawExample only when it is read
    (molmo.data.tables); a row's problems (a missing image, a bad answer index) surface then."""
    key = dataset.lower().replace("-", "_")
    name = ALIASES.get(key, key)
    if name not in SPECS:
        raise ValueError(f"unknown academic dataset {dataset!r}; expected one of {sorted(SPECS)}")
    spec = SPECS[name]
    folder = Path(image_dir) if image_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise PixMoError(f"image folder {folder} does not exist")
    rows = TableSet.open(table_files(path))
    needed = [spec.image] + ([("goal",), ("step_instruction",), ("action",)] if spec.kind == "android"
                             else [spec.question, spec.answer] + ([spec.options] if spec.options else []))
    for f in rows.files:
        for names in needed:
            if f.n and not any(c in f.columns for c in names):
                raise PixMoError(f"{f.path}: {name} rows are missing column {' / '.join(repr(c) for c in names)}; "
                                 f"they have {sorted(f.columns)}")
    keep = np.ones(len(rows), bool)
    if name == "science_qa":  # text-only questions are not part of science_qa_img
        keep = np.asarray(pc.is_valid(rows.column("image")).to_numpy(zero_copy_only=False), bool)
    if spec.group_by_image:
        gid, uniques = rows.group_ids_of(_group_keys(rows))
        order, offsets = group_rows(gid, keep, len(uniques))
        nonempty = np.flatnonzero(np.diff(offsets) > 0)
        order = np.concatenate([order[offsets[g]:offsets[g + 1]] for g in nonempty]) if len(nonempty) else order[:0]
        offsets = np.concatenate([[0], np.cumsum(np.diff(offsets)[nonempty])])
    else:
        order = np.flatnonzero(keep)
        offsets = np.arange(len(order) + 1)

    def build(picked: list[tuple[Path, int, dict]], e: int) -> RawExample:
        file, i, row = picked[0]
        anns = [a for f_, j, r in picked
                for a in (android_annotations(r, f_, j) if spec.kind == "android" else [_annotation(r, spec, name, f_, j)])]
        image = _resolve_image(row, spec, file, folder, name, i)
        if image is None:
            raise PixMoError(f"{file}: {name} row {i}: image not found (embedded bytes, or a file in "
                             f"{folder or file.parent})")
        key_value = next((row[k] for k in ("image_id", "image_index", "image") if isinstance(row.get(k), (str, int))), None)
        ex_id = str(key_value) if spec.group_by_image and key_value is not None else \
            str(row.get("question_id", row.get("questionId", f"{file.name}:{i}")))
        return RawExample(image=image, annotations=anns, image_size=image_size(image), source=str(file), id=ex_id)
    return LazyExamples(rows, order, offsets, build)


READER_NAMES: tuple[str, ...] = tuple(SPECS)
STYLES: dict[str, str] = {n: s.style for n, s in SPECS.items()}
__all__ = ["SPECS", "ALIASES", "STYLES", "AcademicSpec", "read_academic", "most_frequent", "android_annotations"]

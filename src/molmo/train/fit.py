"""Training examples that fit the sequence length: an answer is never cut off.

A training sequence ends with an answer, so a too-long example would lose answer tokens. `fit_example` keeps
an example whole by lowering its crop budget (the largest budget that fits). When even one crop is too long,
it drops whole question-answer pairs instead (an image's annotations are packed into one sequence, so a point
scene with many objects lists every point): it keeps the crop budget and the pairs that still fit, in the
formatter's (shuffled) order, so another epoch keeps others. Only a single pair too long even at one crop is
given up (None); the data loader then skips it with a warning. `plan_fit` checks a data set up front: which
lines get fewer crops, which lose pairs, which are skipped, the longest example. `molmo finetune` logs it and
`molmo data validate --model` prints it.

    plan = plan_fit(read_own_data("train.jsonl"), processor, max_crops=12, sequence_length=4096)
    print(plan.summary())
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from molmo.data.example import RawExample
from molmo.data.formatter import Formatter

SHOW_LINES = 5  # line numbers listed per category in summaries


def _largest_budget(process: Callable[[int], dict[str, np.ndarray]], max_crops: int, length: int
                    ) -> tuple[dict[str, np.ndarray], int] | None:
    """`process(crops)` -> example; the example at the largest budget <= max_crops whose sequence fits in
    `length`, with that budget, or None when none does. Token counts grow with the budget, so a binary
    search needs about log2(max_crops) extra passes, only for examples that do not fit at first."""
    out = process(max_crops)
    if len(out["input_ids"]) <= length:
        return out, max_crops
    lo, hi, best = 1, max_crops - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = process(mid)
        if len(candidate["input_ids"]) <= length:
            best, lo = (candidate, mid), mid + 1
        else:
            hi = mid - 1
    return best


@dataclass(frozen=True)
class Fit:
    example: dict[str, np.ndarray]
    crops: int
    pairs: tuple[int, ...]  # the question-answer pairs (conversations) kept, all of them when it fitted whole


def fit_example(process: Callable[[int, tuple[int, ...]], dict[str, np.ndarray]], max_crops: int, length: int,
                pairs: int = 1) -> Fit | None:
    """`process(crops, kept_pairs)` -> example of those of its `pairs` conversations. Whole with the largest
    crop budget that fits; else the pairs that fit one by one at the full budget (at one crop when none does
    alone), then the largest budget for them; None when no single pair fits even at one crop."""
    everything = tuple(range(pairs))
    whole = _largest_budget(lambda crops: process(crops, everything), max_crops, length)
    if whole is not None or pairs == 1:
        return Fit(*whole, everything) if whole else None
    for budget in dict.fromkeys((max_crops, 1)):
        kept: tuple[int, ...] = ()
        for pair in everything:
            if len(process(budget, (*kept, pair))["input_ids"]) <= length:
                kept += (pair,)
        if kept:
            out, crops = _largest_budget(lambda c: process(c, kept), max_crops, length)
            return Fit(out, crops, kept)
    return None


def warn_skipped(source: str, example_id: str, tokens_at_one_crop: str) -> None:
    print(f"warning: skipped {source}: example {example_id!r}: too long for the sequence length even with one "
          f"crop and one question-answer pair ({tokens_at_one_crop}); its answer would be cut", file=sys.stderr,
          flush=True)


@dataclass
class FitPlan:
    sequence_length: int
    max_crops: int
    examples: int = 0
    longest: int = 0  # tokens of the longest example as it will be trained
    lowered: list[tuple[str, int, int]] = field(default_factory=list)  # (lines, tokens at max_crops, crops used)
    trimmed: list[tuple[str, int, int]] = field(default_factory=list)  # (lines, pairs kept, pairs in the example)
    skipped: list[tuple[str, int]] = field(default_factory=list)  # (lines, tokens at one crop)

    def summary(self) -> str:
        lines = [f"{self.examples} example(s), longest {self.longest} tokens; sequence length "
                 f"{self.sequence_length}, crop budget {self.max_crops}"]
        if self.lowered:
            shown = ", ".join(f"{where} ({n} tokens -> {c} crops)" for where, n, c in self.lowered[:SHOW_LINES])
            more = f" and {len(self.lowered) - SHOW_LINES} more" if len(self.lowered) > SHOW_LINES else ""
            lines.append(f"{len(self.lowered)} example(s) kept whole with fewer crops: {shown}{more}")
        if self.trimmed:
            shown = ", ".join(f"{where} ({k} of {n} pairs)" for where, k, n in self.trimmed[:SHOW_LINES])
            more = f" and {len(self.trimmed) - SHOW_LINES} more" if len(self.trimmed) > SHOW_LINES else ""
            lines.append(f"{len(self.trimmed)} example(s) too long even at one crop keep only the question-answer "
                         f"pairs that fit (others in another epoch's order): {shown}{more}")
        if self.skipped:
            shown = ", ".join(f"{where} ({n} tokens at 1 crop)" for where, n in self.skipped[:SHOW_LINES])
            more = f" and {len(self.skipped) - SHOW_LINES} more" if len(self.skipped) > SHOW_LINES else ""
            lines.append(f"{len(self.skipped)} example(s) skipped, an answer would be cut even at one crop and one "
                         f"pair: {shown}{more}; raise --sequence-length or shorten them")
        return "\n".join(lines)


def line_numbers(path: str | Path) -> dict[str, list[int]]:
    """Own-data JSONL: image path -> the line numbers that annotate it (examples are grouped by image)."""
    out: dict[str, list[int]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            image = row.get("image") or (row.get("images") or [None])[0]
            if isinstance(image, str):
                out.setdefault(image, []).append(n)
    return out


def plan_fit(examples: Sequence[RawExample], processor: Any, *, max_crops: int, sequence_length: int,
             stage: str = "sft", seed: int = 0, where: Callable[[RawExample], str] | None = None) -> FitPlan:
    """Check every example as the loader formats it in the first epoch (`seed`: the data seed), without decoding
    images: the text is tokenised and the image block's length computed for a blank image of the same size
    (cached per size and budget). The loader decides again for every example it draws."""
    plan = FitPlan(sequence_length, max_crops, examples=len(examples))
    fmt = Formatter(stage=stage, seed=seed, dataset_size=len(examples))
    placeholder = processor.tokenizer.image_token_ids.image

    @lru_cache(maxsize=4096)
    def image_tokens(size: tuple[int, int], crops: int) -> int:
        blank = np.zeros((size[1], size[0], 3), np.uint8)
        return len(processor.image_inputs(blank, crops)["image_tokens"])

    for i, ex in enumerate(examples):
        convs = fmt.format(ex, index=i)
        # A conversation ending with an answer encodes to exactly its own tokens (BOS in, final EOS out), so the
        # lengths of a subset of pairs add up; the image block replaces an `<|image|>` placeholder.
        ids = [processor.encode(None, message_lists=[c])["input_ids"] for c in convs]
        pair_tokens = [len(t) - int(bool(ex.image_size) and placeholder in t) for t in ids]

        def total(crops: int, kept: tuple[int, ...]) -> dict[str, np.ndarray]:
            n = sum(pair_tokens[j] for j in kept) + (image_tokens(tuple(ex.image_size), crops) if ex.image_size else 0)
            return {"input_ids": np.empty(n)}

        fit = fit_example(total, max_crops, sequence_length, len(convs))
        name = where(ex) if where else str(ex.id or i)
        if fit is None:
            plan.skipped.append((name, min((len(total(1, (j,))["input_ids"]) for j in range(len(convs))), default=0)))
            continue
        plan.longest = max(plan.longest, len(fit.example["input_ids"]))
        if len(fit.pairs) < len(convs):
            plan.trimmed.append((name, len(fit.pairs), len(convs)))
        elif fit.crops < max_crops:
            plan.lowered.append((name, len(total(max_crops, fit.pairs)["input_ids"]), fit.crops))
    return plan


def own_data_plan(path: str | Path, processor: Any, *, max_crops: int, sequence_length: int,
                  examples: Sequence[RawExample] | None = None, seed: int = 0) -> FitPlan:
    """`plan_fit` for an own-data JSONL (its `examples` when already read), naming examples by `file:line`."""
    from molmo.data.owndata import read_own_data

    lines = line_numbers(path)

    def where(ex: RawExample) -> str:
        nums = lines.get(str(ex.id), [])
        return f"{Path(path).name}:{','.join(map(str, nums))}" if nums else f"{Path(path).name}:{ex.id}"

    return plan_fit(read_own_data(path) if examples is None else examples, processor, max_crops=max_crops,
                    sequence_length=sequence_length, seed=seed, where=where)


def processor_for_checkpoint(path: str | Path) -> tuple[Any, int, int]:
    """(MolmoProcessor, context length, default crop budget) of a checkpoint folder, without its weights."""
    from molmo.checkpoint.io import read_config
    from molmo.preprocess.config import PreprocessorConfig
    from molmo.preprocess.processor import MolmoProcessor
    from molmo.text.tokenizer import MolmoTokenizer

    path = Path(path)
    config = read_config(path)
    pre_file = path / "preprocessor_config.json"
    pre = PreprocessorConfig.from_json(pre_file) if pre_file.is_file() else PreprocessorConfig.released()
    processor = MolmoProcessor(MolmoTokenizer.from_dir(path), pre, max_sequence_length=None)
    return processor, config.llm.max_position_embeddings, pre.max_crops

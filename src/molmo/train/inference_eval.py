"""Generation evaluations during training (the released SFT run's "inference evaluators", recipe-spec §3.3):
every `inference_eval.every` steps the model being trained answers up to `max_examples` items of each
benchmark (molmo.eval.benchmarks, read from `<data root>/benchmarks` unless `data_dir` says otherwise) and the
headline scores join that step's log record as `eval/<benchmark>`. Predictions and reports go to
`<out_dir>/evals/step_<N>/`.

    evals = InferenceEvals.open(cfg)                # None when off; checks the benchmark folders exist
    record.update(evals.run(model, tokenizer, processor_config, step, out_dir, rank, world))  # on every rank

In a multi-rank (FSDP) run every rank takes part in every sharded forward, so the ranks generate in lockstep:
each is handed the same batches and answers its share of every generation group (style, token limit, crops,
image or not); a rank without a share answers a dummy row (the group's first item) whose answer is dropped.
Each decode step all-reduces a "my rows are done" flag, so a finished rank keeps stepping until all are done:
one scalar all-reduce a step, next to the step's own parameter all-gathers, where always running
max_new_tokens steps would cost 192 steps a batch on the pointing sets for answers of a few tokens. Every
rank then holds every answer; rank 0's folder and scores are those of the single-process path (the other
ranks score into a temporary folder, unused).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from molmo.train.config import TrainConfig


def benchmark_dir(cfg: TrainConfig) -> Path:
    ie = cfg.inference_eval
    return Path(ie.data_dir) if ie.data_dir else Path(cfg.data.root or ".") / "benchmarks"


def missing_benchmarks(cfg: TrainConfig) -> list[str]:
    """One line per benchmark of the in-training evaluation whose folder is missing."""
    from molmo.eval.benchmarks import BENCHMARKS
    ie = cfg.inference_eval
    if not ie.every:
        return []
    lines = []
    for name in ie.benchmarks:
        if name not in BENCHMARKS:
            lines.append(f"  eval {name}: unknown benchmark (known: {', '.join(sorted(BENCHMARKS))})")
        elif not (benchmark_dir(cfg) / BENCHMARKS[name].folder).is_dir():
            lines.append(f"  eval {name}: missing {benchmark_dir(cfg) / BENCHMARKS[name].folder} -> put the "
                         f"benchmark there (molmo.eval.benchmarks layout) or set --inference_eval.every=0")
    return lines


def _live_predictor(api: Any):
    """molmo.eval's MolmoPredictor over the model being trained instead of a checkpoint loaded from disk."""
    from molmo.eval.runner import MolmoPredictor

    predictor = MolmoPredictor.__new__(MolmoPredictor)
    predictor.model = api
    return predictor


def _all_ranks_done(device) -> Callable[[bool], bool]:
    """generate's stop rule across ranks: stop when no rank has an unfinished row."""
    import torch
    import torch.distributed as dist

    def should_stop(done: bool) -> bool:
        unfinished = torch.tensor([0.0 if done else 1.0], device=device)
        dist.all_reduce(unfinished)
        return float(unfinished) == 0.0
    return should_stop


class ShardedPredictor:
    """Every rank is given the same items; each answers its share of every generation group (a rank without one
    answers the group's first item, dropped) and all ranks exchange the answers."""

    def __init__(self, predictor: Any, rank: int, world: int):
        self.predictor, self.rank, self.world = predictor, rank, world

    def predict(self, items: Sequence[Any]) -> list[str]:
        import torch.distributed as dist
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, it in enumerate(items):  # one generate call per group, with the same token limit on every rank
            groups[(it.style, it.max_new_tokens, it.max_crops, it.image is None)].append(i)
        out: list[str] = [""] * len(items)
        for idx in groups.values():
            mine = idx[self.rank::self.world]
            answers = self.predictor.predict([items[i] for i in mine or idx[:1]])
            shared: list[Any] = [None] * self.world
            dist.all_gather_object(shared, list(zip(mine, answers)))
            for part in shared:
                for i, answer in part:
                    out[i] = answer
        return out


@dataclass
class InferenceEvals:
    cfg: TrainConfig

    @classmethod
    def open(cls, cfg: TrainConfig) -> "InferenceEvals | None":
        if not cfg.inference_eval.every or not cfg.inference_eval.benchmarks:
            return None
        return cls(cfg)

    def due(self, step: int) -> bool:
        return step % self.cfg.inference_eval.every == 0

    def run(self, model, tokenizer, preprocessor, step: int, out_dir: Path, rank: int = 0,
            world: int = 1) -> dict[str, float]:
        """The scores as `eval/<benchmark>`; every rank of a multi-rank run must call it."""
        import torch

        from molmo.api import Molmo as Api
        from molmo.eval.runner import PREDICTIONS_FILE, evaluate_benchmarks
        ie = self.cfg.inference_eval
        predictor = _live_predictor(Api(model, tokenizer, preprocessor))
        out = Path(out_dir) / "evals" / f"step_{step:07d}"
        with contextlib.ExitStack() as stack:
            stack.callback(model.train, model.training)
            model.eval()
            stack.enter_context(torch.no_grad())
            if world > 1 and hasattr(model, "unshard"):
                # the FSDP root's own weights (embeddings, head) stay gathered, in the compute dtype: generate
                # reads that dtype for its KV cache, and each decode step skips gathering them again
                model.unshard()
                stack.callback(model.reshard)
            if world > 1:  # ranks must agree on what is left to predict: no resuming from an earlier attempt
                predictor.should_stop = _all_ranks_done(next(model.parameters()).device)
                predictor = ShardedPredictor(predictor, rank, world)
                if rank == 0:
                    (out / PREDICTIONS_FILE).unlink(missing_ok=True)
                else:
                    out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="molmo-eval-")))
            metrics = evaluate_benchmarks(list(ie.benchmarks), benchmark_dir(self.cfg), predictor, out,
                                          batch_size=ie.batch_size * world, limit=ie.max_examples)
        return {f"eval/{name}": float(m["score"]) for name, m in metrics.items() if name in ie.benchmarks}

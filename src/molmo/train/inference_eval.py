"""Generation evaluations during training (the released SFT run's "inference evaluators", recipe-spec §3.3):
every `inference_eval.every` steps the model being trained answers up to `max_examples` items of each
benchmark (molmo.eval.benchmarks, read from `<data root>/benchmarks` unless `data_dir` says otherwise) and the
headline scores join that step's log record as `eval/<benchmark>`. Predictions and reports go to
`<out_dir>/evals/step_<N>/`.

    evals = InferenceEvals.open(cfg)                # None when off; checks the benchmark folders exist
    record.update(evals.run(model, tokenizer, processor_config, step, out_dir))

Runs in single-process training; a multi-rank (FSDP) run skips them with a note at start, since every rank
would have to take part in each sharded forward of a generation whose length only rank 0 knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    predictor.model, predictor.seed = api, None
    return predictor


@dataclass
class InferenceEvals:
    cfg: TrainConfig

    @classmethod
    def open(cls, cfg: TrainConfig, world: int = 1) -> "InferenceEvals | None":
        if not cfg.inference_eval.every or not cfg.inference_eval.benchmarks:
            return None
        if world > 1:
            print(f"note: the generation evaluations ({', '.join(cfg.inference_eval.benchmarks)}) are skipped in "
                  f"this {world}-rank run; evaluate the saved checkpoints with `molmo eval`", flush=True)
            return None
        return cls(cfg)

    def due(self, step: int) -> bool:
        return step % self.cfg.inference_eval.every == 0

    def run(self, model, tokenizer, preprocessor, step: int, out_dir: Path) -> dict[str, float]:
        import torch

        from molmo.api import Molmo as Api
        from molmo.eval.runner import evaluate_benchmarks
        ie = self.cfg.inference_eval
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                metrics = evaluate_benchmarks(list(ie.benchmarks), benchmark_dir(self.cfg),
                                              _live_predictor(Api(model, tokenizer, preprocessor)),
                                              Path(out_dir) / "evals" / f"step_{step:07d}", batch_size=ie.batch_size,
                                              limit=ie.max_examples)
        finally:
            model.train(was_training)
        return {f"eval/{name}": float(m["score"]) for name, m in metrics.items() if name in ie.benchmarks}

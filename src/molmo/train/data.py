"""Training data: open the configured sources (generators, own-data files, PixMo/academic readers), sample
the mixture deterministically, format (molmo.data.formatter), pre-process (molmo.preprocess) and collate.

Example `g` of the run (0, 1, 2, … over the whole global batch sequence) is fully determined by
(data seed, g): which source, which item, which formatter draws. Step `s` on rank `r` of `w` uses examples
`s*global_batch + r*device_batch …`, so any world size sees the same global batch and a resumed run
continues with the same data.

    loader = build_loader(cfg, processor, rank=0, world_size=1, start_step=0)
    for step_batches in loader: ...   # a list of micro-batches (dicts of tensors) per optimizer step
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from molmo.data.example import KINDS, RawExample
from molmo.data.formatter import Formatter
from molmo.data.owndata import read_own_data, row_to_annotation
from molmo.preprocess.collate import collate
from molmo.train.config import DataConfig, DataSource, TrainConfig
from molmo.train.fit import fit_example, warn_skipped


class DataError(ValueError):
    """A data source that cannot be opened (bad kind, missing file, invalid rows)."""


class GeneratorSource:
    """Generated images made on the fly: item i is `generate_one(kind, seed, i)` (nothing on disk)."""

    def __init__(self, kind: str, size: int, seed: int, options: dict[str, Any]):
        from molmo.data.generators import get_generator
        get_generator(kind)
        if size <= 0:
            raise DataError(f"generator source {kind!r} needs size > 0 (the number of distinct images)")
        self.kind, self.size, self.seed, self.options = kind, size, seed, options

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> RawExample:
        from molmo.data.generators import generate_one
        item = generate_one(self.kind, self.seed, i, **self.options)
        annotations = [row_to_annotation(json.loads(json.dumps(a))) for a in item.annotations]
        return RawExample(image=item.image.convert("RGB"), annotations=annotations, image_size=item.image.size,
                          source=f"generator:{self.kind}", id=f"{self.kind}-{self.seed}-{i}")


class KindFilter:
    """A source's examples with only the annotations of some kinds (e.g. short "qa" answers for a grounding
    phase). Item i without any such annotation is replaced by the next item that has one."""

    MAX_SKIP = 1000

    def __init__(self, items: Any, kinds: tuple[str, ...], name: str):
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise DataError(f"source {name!r}: unknown annotation kinds {sorted(unknown)}; expected some of {KINDS}")
        self.items, self.kinds, self.name = items, set(kinds), name

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> RawExample:
        end = i + min(self.MAX_SKIP, len(self.items))
        for j in range(i, end):
            example = self.items[j % len(self.items)]
            kept = [a for a in example.annotations if a.kind in self.kinds]
            if kept:
                return dataclasses.replace(example, annotations=kept)
        raise DataError(f"source {self.name!r}: no annotation of kinds {sorted(self.kinds)} in items {i}.."
                        f"{end - 1} (is the kind right for this source?)")


def open_source(src: DataSource) -> Any:
    """A sized, indexable collection of RawExample for one configured source."""
    items = _open_items(src)
    return KindFilter(items, src.kinds, src.name) if src.kinds else items


def _open_items(src: DataSource) -> Any:
    kind, _, sub = src.kind.partition(":")
    if kind == "generator":
        return GeneratorSource(sub, src.size, src.seed, dict(src.options))
    if kind == "owndata":
        if not src.path:
            raise DataError(f"source {src.name!r}: owndata needs a path to a JSONL file")
        examples = read_own_data(src.path)
        return examples[: src.size] if src.size else examples
    if kind in ("pixmo", "academic"):
        if not src.path:
            raise DataError(f"source {src.name!r}: {src.kind} needs the path of a local copy")
        module = importlib.import_module(f"molmo.data.{kind}")
        examples = getattr(module, f"read_{kind}")(sub, src.path, **dict(src.options))
        return examples[: src.size] if src.size else examples
    raise DataError(f"source {src.name!r}: unknown kind {src.kind!r}; expected generator:KIND, owndata, "
                    f"pixmo:NAME or academic:NAME")


def mixture_rates(sources: tuple[DataSource, ...], sizes: list[int], mixture: str = "") -> np.ndarray:
    """Explicit rates where given, the rest proportional to sqrt(size) (recipe-spec §2.3), normalised. With a
    named mixture (`molmo.data.mixture.PRESETS`) its group rates and fixed sizes decide, by source name."""
    if mixture:
        from molmo.data.mixture import preset_mixture
        by_name = preset_mixture(mixture).rates({s.name: n for s, n in zip(sources, sizes)}, drop_missing=True)
        missing = [s.name for s in sources if s.name not in by_name]
        if missing:
            raise DataError(f"sources {missing} are not members of mixture {mixture!r}")
        return np.array([by_name[s.name] for s in sources]) / sum(by_name[s.name] for s in sources)
    rates = np.array([s.rate if s.rate is not None else math.sqrt(n) for s, n in zip(sources, sizes)], float)
    if rates.sum() <= 0:
        raise DataError("mixture rates sum to zero")
    return rates / rates.sum()


class MixtureDataset(Dataset):
    """Map-style dataset over global example indices: g -> processed example (numpy arrays)."""

    def __init__(self, sources: tuple[DataSource, ...], data_cfg: DataConfig, processor: Any, seed: int):
        if not sources:
            raise DataError("no data sources configured (data.sources is empty)")
        self.collections = [open_source(s) for s in sources]
        for s, c in zip(sources, self.collections):
            if len(c) == 0:
                raise DataError(f"source {s.name!r} ({s.kind} {s.path}) has no examples")
        self.rates = mixture_rates(sources, [len(c) for c in self.collections], data_cfg.mixture)
        self.cumulative = np.cumsum(self.rates)
        self.cfg, self.processor, self.seed = data_cfg, processor, seed
        self.formatters = [Formatter(stage=s.stage or data_cfg.stage, seed=seed + 7919 * k, dataset_size=len(c))
                           for k, (s, c) in enumerate(zip(sources, self.collections))]

    def locate(self, g: int) -> tuple[int, int, int]:
        """(source, item, epoch) of global example g: i.i.d. draws from the mixture, items in a per-source
        permutation that is reshuffled every pass."""
        rng = np.random.default_rng([self.seed, g])
        k = int(np.searchsorted(self.cumulative, rng.random() * self.cumulative[-1], side="right"))
        k = min(k, len(self.collections) - 1)
        n = len(self.collections[k])
        draw = int(rng.integers(1 << 62))
        epoch, pos = divmod(draw % (n * 1000), n)
        order = np.random.default_rng([self.seed, k, epoch]).permutation(n)
        return k, int(order[pos]), epoch

    def __len__(self) -> int:
        return 1 << 62

    MAX_SKIP = 100  # consecutive too-long examples before the run stops

    def __getitem__(self, g: int) -> dict[str, np.ndarray]:
        """Example g, whole: a too-long example gets a lower crop budget, or is skipped (with a warning) for
        the next item of its source. Answers are never cut (molmo.train.fit)."""
        k, i, epoch = self.locate(g)
        n = len(self.collections[k])
        for j in range(i, i + min(n, self.MAX_SKIP)):
            out = self._example(k, j % n, epoch)
            if out is not None:
                return out
        raise DataError(f"source {k}: {min(n, self.MAX_SKIP)} consecutive examples from item {i} are longer than "
                        f"sequence_length {self.cfg.sequence_length} even with one crop")

    def _example(self, k: int, i: int, epoch: int) -> dict[str, np.ndarray] | None:
        example = self.collections[k][i]
        source = example.source or f"data source {k}"
        try:  # a bad example stops training with its source named; nothing is skipped silently
            lists = self.formatters[k].format(example, index=i, epoch=epoch)

            def process(crops: int) -> dict[str, np.ndarray]:
                return self.processor.process(example.image, message_lists=lists, max_crops=crops,
                                              multi_annotation_weighting=self.cfg.multi_annotation_weighting)

            fit = fit_example(process, self.cfg.max_crops or self.processor.config.max_crops,
                              self.cfg.sequence_length)
        except Exception as e:
            raise DataError(f"{source}: example {example.id or i!r} "
                            f"({example.image if isinstance(example.image, (str, Path)) else 'in-memory image'}): "
                            f"{type(e).__name__}: {e}") from e
        if fit is None:
            warn_skipped(source, str(example.id or i), f"over {self.cfg.sequence_length} tokens")
            return None
        return fit[0]


class StepSampler(Sampler[int]):
    """This rank's global example indices, step by step from `start_step`."""

    def __init__(self, global_batch: int, rank: int, world_size: int, start_step: int, steps: int,
                 offset: int = 0):
        if global_batch % world_size:
            raise DataError(f"global_batch {global_batch} is not divisible by the world size {world_size}")
        self.per_rank = global_batch // world_size
        self.global_batch, self.rank, self.start, self.steps, self.offset = global_batch, rank, start_step, steps, offset

    def __iter__(self) -> Iterator[int]:
        for s in range(self.start, self.steps):
            base = self.offset + s * self.global_batch + self.rank * self.per_rank
            yield from range(base, base + self.per_rank)

    def __len__(self) -> int:
        return (self.steps - self.start) * self.per_rank


@dataclass
class Collator:
    sequence_length: int

    def __call__(self, examples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        return collate(examples, pad_to_length=min(self.sequence_length, max(len(e["input_ids"]) for e in examples)))


def build_loader(cfg: TrainConfig, processor: Any, rank: int, world_size: int, start_step: int = 0,
                 validation: bool = False) -> DataLoader:
    """Micro-batches in order; the trainer groups `device_batch // micro_batch` of them per step."""
    sources = cfg.data.validation if validation else cfg.data.sources
    dataset = MixtureDataset(sources, cfg.data, processor, cfg.data.seed + (1 if validation else 0))
    steps = cfg.eval_batches if validation else cfg.steps
    batch = cfg.micro_batch * world_size if validation else cfg.global_batch
    if not validation and (cfg.global_batch // world_size) % cfg.micro_batch:
        raise DataError(f"the per-rank batch {cfg.global_batch // world_size} is not a multiple of "
                        f"micro_batch {cfg.micro_batch}")
    sampler = StepSampler(batch, rank, world_size, 0 if validation else start_step, steps)
    workers = cfg.data.num_workers
    return DataLoader(dataset, batch_size=cfg.micro_batch, sampler=sampler, collate_fn=Collator(cfg.data.sequence_length),
                      num_workers=workers, persistent_workers=False, prefetch_factor=4 if workers else None)

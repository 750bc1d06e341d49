"""Training data: open the configured sources (generators, own-data files, PixMo/academic readers), sample
the mixture deterministically, format (molmo.data.formatter), pre-process (molmo.preprocess) and collate.

Example `g` of the run (0, 1, 2, … over the whole global batch sequence) is fully determined by
(data seed, g): which source (drawn at the mixture's rates), which item (each source walked in a fresh seeded
permutation per epoch, molmo.data.mixture.MixtureSampler), which formatter draws. Step `s` on rank `r` of `w`
uses examples `s*global_batch + r*device_batch …`, so any world size sees the same global batch; the
sampler's state goes into the checkpoint and a resumed run continues with the same data.

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
from molmo.data.generators.cache import GeneratedCache, draw
from molmo.data.owndata import read_own_data, row_to_annotation
from molmo.image.loading import load_image
from molmo.preprocess.collate import collate
from molmo.train.config import DataConfig, DataSource, TrainConfig
from molmo.train.fit import fit_example, warn_skipped


class DataError(ValueError):
    """A data source that cannot be opened (bad kind, missing file, invalid rows)."""


class GeneratorSource:
    """Generated images: item i is `generate_one(kind, seed, i)`, made on the fly, or read back from the
    generated-image cache when one is configured (`data.generated_cache`, molmo.data.generators.cache)."""

    def __init__(self, kind: str, size: int, seed: int, options: dict[str, Any], cache: GeneratedCache | None = None):
        from molmo.data.generators import get_generator
        get_generator(kind)
        if size <= 0:
            raise DataError(f"generator source {kind!r} needs size > 0 (the number of distinct images)")
        self.kind, self.size, self.seed, self.options, self.cache = kind, size, seed, options, cache

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> RawExample:
        item = draw(self.kind, self.seed, i, self.cache, **self.options)
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


PATH_OPTIONS = ("image_dir", "exclude")  # reader options that name files: relative ones resolve against the root


def resolve_source(src: DataSource, root: str = "") -> DataSource:
    """The source with its path (and path options) resolved against the data root; URL-based PixMo sets get
    the root's image folder (`molmo data download` layout) unless they name one."""
    from molmo.data.download import PIXMO_HUB, PIXMO_IMAGES
    if not root or src.kind.split(":")[0] not in ("pixmo", "academic"):
        return src
    options = dict(src.options)
    reader = src.kind.partition(":")[2]
    if src.kind.startswith("pixmo:") and PIXMO_HUB.get(reader, (None, False))[1]:
        options.setdefault("image_dir", PIXMO_IMAGES)
    for key in PATH_OPTIONS:
        if isinstance(options.get(key), str):
            options[key] = str(Path(root) / options[key])
    return dataclasses.replace(src, path=str(Path(root) / src.path) if src.path else src.path, options=options)


def missing_data(data: DataConfig) -> list[str]:
    """One line per missing file of a PixMo / academic source (training or validation: its tables, image folder,
    excluded table), with how to get it; [] when everything is in place."""
    from molmo.data.download import fetch_hint
    lines, seen = [], set()
    for src in (*data.sources, *data.validation, *data.extra_validation):
        kind, _, reader = src.kind.partition(":")
        if kind not in ("pixmo", "academic"):
            continue
        resolved = resolve_source(src, data.root)
        wanted = [("data", resolved.path)] + [(k, resolved.options[k]) for k in PATH_OPTIONS if resolved.options.get(k)]
        for what, path in wanted:
            if path and Path(path).exists():
                continue
            # an excluded table (pixmo-points-eval) is fetched under its own name
            name = Path(path).name if what == "exclude" else reader
            hint = fetch_hint(kind, name, data.root or "DATA_ROOT")
            if (src.name, what) not in seen:
                seen.add((src.name, what))
                lines.append(f"  {src.name} ({src.kind}): missing {what} {path} -> {hint}")
    return lines


def require_data(data: DataConfig, extra: list[str] = ()) -> None:
    """Fail before any training step when a source's files are missing, naming every such source (`extra`:
    more such lines, e.g. the in-training evaluation's benchmarks)."""
    lines = missing_data(data) + list(extra)
    if lines:
        root = f" under --data_root={data.root}" if data.root else " (no --data_root given)"
        raise DataError(f"data not found{root} ({len(lines)} missing item(s)):\n" + "\n".join(lines))


def open_source(src: DataSource, root: str = "", cache: GeneratedCache | None = None) -> Any:
    """A sized, indexable collection of RawExample for one configured source (`cache`: where generator sources
    keep their images)."""
    src = resolve_source(src, root)
    items = _open_items(src, cache)
    return KindFilter(items, src.annotation_kinds, src.name) if src.annotation_kinds else items


def _open_items(src: DataSource, cache: GeneratedCache | None) -> Any:
    kind, _, sub = src.kind.partition(":")
    if kind == "generator":
        return GeneratorSource(sub, src.size, src.seed, dict(src.options), cache)
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


def mixture_rates(sources: tuple[DataSource, ...], sizes: list[int], mixture: str = "") -> dict[str, float]:
    """Sampling rate of every source by name: explicit rates where given, the rest proportional to sqrt(size)
    (recipe-spec §2.3), normalised. With a named mixture (`molmo.data.mixture.PRESETS`) its group rates and
    fixed sizes decide, by source name."""
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"source names must be unique; repeated: {dupes}")
    if mixture:
        from molmo.data.mixture import preset_mixture
        by_name = preset_mixture(mixture).rates(dict(zip(names, sizes)), drop_missing=True)
        missing = [n for n in names if n not in by_name]
        if missing:
            raise DataError(f"sources {missing} are not members of mixture {mixture!r}")
        rates = np.array([by_name[n] for n in names])
    else:
        rates = np.array([s.rate if s.rate is not None else math.sqrt(n) for s, n in zip(sources, sizes)], float)
    if rates.sum() <= 0:
        raise DataError("mixture rates sum to zero")
    return dict(zip(names, (rates / rates.sum()).tolist()))


def example_weight(example: RawExample, source: str) -> float:
    """The loss weight of one example: its annotations' common weight (e.g. ChartQA's human / augmented
    balance, recipe-spec §1.9); packed annotations with different weights are refused (one weight per example)."""
    weights = {a.weight for a in example.annotations}
    if len(weights) > 1:
        raise DataError(f"source {source!r}: example {example.id!r} packs annotations with different loss weights "
                        f"{sorted(weights)}")
    return weights.pop() if weights else 1.0


class MixtureDataset(Dataset):
    """Map-style dataset over (source, item, epoch) keys -> processed example (numpy arrays); `sampler` is the
    mixture's deterministic stream of such keys (molmo.data.mixture.MixtureSampler)."""

    def __init__(self, sources: tuple[DataSource, ...], data_cfg: DataConfig, processor: Any, seed: int):
        from molmo.data.mixture import MixtureSampler
        if not sources:
            raise DataError("no data sources configured (data.sources is empty)")
        cache = GeneratedCache.at(data_cfg.generated_cache)
        self.collections = [open_source(s, data_cfg.root, cache) for s in sources]
        for s, c in zip(sources, self.collections):
            if len(c) == 0:
                raise DataError(f"source {s.name!r} ({s.kind} {s.path}) has no examples")
        sizes = [len(c) for c in self.collections]
        self.names = [s.name for s in sources]
        self.rates = mixture_rates(sources, sizes, data_cfg.mixture)
        self.sampler = MixtureSampler(self.rates, dict(zip(self.names, sizes)), seed=seed)
        self.cfg, self.processor, self.seed = data_cfg, processor, seed
        weighting = data_cfg.multi_annotation_weighting
        self.weighting = None if weighting in ("", "none") else weighting
        self.formatters = [Formatter(stage=s.stage or data_cfg.stage, seed=seed, dataset_size=len(c),
                                     max_annotations=s.annotations_per_example)
                           for s, c in zip(sources, self.collections)]
        self._by_name = {n: k for k, n in enumerate(self.names)}

    def __len__(self) -> int:
        return 1 << 62

    MAX_SKIP = 100  # consecutive too-long examples before the run stops

    def __getitem__(self, key: tuple[str, int, int]) -> dict[str, np.ndarray]:
        """Example (source, item, epoch): a too-long example gets a lower crop budget or fewer question-answer
        pairs, or is skipped (with a warning) for the next item of its source. Answers are never cut
        (molmo.train.fit)."""
        name, i, epoch = key
        k = self._by_name[name]
        n = len(self.collections[k])
        for j in range(i, i + min(n, self.MAX_SKIP)):
            out = self._example(k, j % n, epoch)
            if out is not None:
                return out
        raise DataError(f"source {name!r}: {min(n, self.MAX_SKIP)} consecutive examples from item {i} are longer "
                        f"than sequence_length {self.cfg.sequence_length} even with one crop and one question-answer "
                        f"pair")

    def _example(self, k: int, i: int, epoch: int) -> dict[str, np.ndarray] | None:
        example = self.collections[k][i]
        source = example.source or f"data source {self.names[k]}"
        try:  # a bad example stops training with its source named; nothing is skipped silently
            lists = self.formatters[k].format(example, index=i, epoch=epoch)
            # decoded once: fitting a too-long example encodes it again per crop budget and per kept pair
            pixels = (None if example.image is None
                      else load_image(example.image, max_pixels=self.processor.max_pixels))
            weight = example_weight(example, self.names[k])

            def process(crops: int, pairs: tuple[int, ...]) -> dict[str, np.ndarray]:
                return self.processor.encode(pixels, message_lists=[lists[j] for j in pairs], max_crops=crops,
                                              weight=weight, multi_annotation_weighting=self.weighting)

            fit = fit_example(process, self.cfg.max_crops or self.processor.config.max_crops,
                              self.cfg.sequence_length, len(lists))
        except Exception as e:
            raise DataError(f"{source}: example {example.id or i!r} "
                            f"({example.image if isinstance(example.image, (str, Path)) else 'in-memory image'}): "
                            f"{type(e).__name__}: {e}") from e
        if fit is None:
            warn_skipped(source, str(example.id or i), f"over {self.cfg.sequence_length} tokens")
            return None
        return fit.example


class StepSampler(Sampler[tuple[str, int, int]]):
    """This rank's share of the mixture stream, step by step from `start_step`: step s on rank r of w takes
    stream positions `s*global_batch + r*per_rank …` (so any world size sees the same global batches)."""

    def __init__(self, stream: Any, global_batch: int, rank: int, world_size: int, start_step: int, steps: int):
        if global_batch % world_size:
            raise DataError(f"global_batch {global_batch} is not divisible by the world size {world_size}")
        self.per_rank = global_batch // world_size
        self.stream, self.global_batch, self.rank = stream, global_batch, rank
        self.start, self.steps = start_step, steps

    def __iter__(self) -> Iterator[tuple[str, int, int]]:
        it = self.stream.iterate(self.start * self.global_batch)
        for _ in range(self.start, self.steps):
            batch = [next(it) for _ in range(self.global_batch)]
            yield from batch[self.rank * self.per_rank:(self.rank + 1) * self.per_rank]

    def __len__(self) -> int:
        return (self.steps - self.start) * self.per_rank

    def state(self, step: int) -> dict:
        """The data state after `step` optimizer steps (stored in the training checkpoint)."""
        return self.stream.state(step * self.global_batch)


@dataclass
class Collator:
    sequence_length: int

    def __call__(self, examples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        return collate(examples, pad_to_length=min(self.sequence_length, max(len(e["input_ids"]) for e in examples)))


@dataclass
class StepCollator:
    """One step's examples (this rank's share) -> its micro-batches, the examples grouped by length so that short
    ones are not padded to the longest of the step. The loss is normalised over the whole step (the trainer's
    Σ w·CE / Σ w), so the grouping leaves the gradient unchanged; it only drops padding (30% of the positions
    computed in `tiny-ground`, whose multi-turn point scenes are 3-5x longer than its clocks and charts)."""
    sequence_length: int
    micro_batch: int

    def __call__(self, examples: list[dict[str, np.ndarray]]) -> list[dict[str, torch.Tensor]]:
        ordered = sorted(examples, key=lambda e: len(e["input_ids"]))  # stable: ties keep the stream's order
        collator = Collator(self.sequence_length)
        return [collator(ordered[i:i + self.micro_batch]) for i in range(0, len(ordered), self.micro_batch)]


class StepBatches(Sampler[list[tuple[str, int, int]]]):
    """The keys of a StepSampler, one list per optimizer step."""

    def __init__(self, sampler: StepSampler):
        self.sampler = sampler

    def __iter__(self) -> Iterator[list[tuple[str, int, int]]]:
        keys = iter(self.sampler)
        for _ in range(len(self)):
            yield [next(keys) for _ in range(self.sampler.per_rank)]

    def __len__(self) -> int:
        return self.sampler.steps - self.sampler.start


def open_dataset(cfg: TrainConfig, validation: bool = False, processor: Any = None) -> MixtureDataset:
    sources = cfg.data.validation if validation else cfg.data.sources
    return MixtureDataset(sources, cfg.data, processor, cfg.data.seed + (1 if validation else 0))


def validation_sets(cfg: TrainConfig) -> dict[str, MixtureDataset]:
    """The validation losses a run logs, by name: `val_loss` over the `validation` mixture and
    `val_loss/<source>` for each `extra_validation` source on its own."""
    sets = {"val_loss": open_dataset(cfg, validation=True)} if cfg.data.validation else {}
    for src in cfg.data.extra_validation:
        sets[f"val_loss/{src.name}"] = MixtureDataset((src,), cfg.data, None, cfg.data.seed + 1)
    return sets


def steps_for(cfg: TrainConfig, n_examples: int) -> int:
    """The run's length: `steps`, or with `epochs` > 0 the official captioner launch script's rule
    `epochs * (n + global_batch - 1) // global_batch` (4 epochs of PixMo-Cap: ~22k steps at n ~ 710k)."""
    if cfg.epochs <= 0:
        return cfg.steps
    return cfg.epochs * (n_examples + cfg.global_batch - 1) // cfg.global_batch


def validation_batches(cfg: TrainConfig, world_size: int) -> int:
    """Validation loader steps: enough micro-batches on every rank for `eval_examples` when it is set."""
    if cfg.eval_examples > 0:
        return math.ceil(cfg.eval_examples / (cfg.micro_batch * world_size))
    return cfg.eval_batches


def build_loader(cfg: TrainConfig, processor: Any, rank: int, world_size: int, start_step: int = 0,
                 validation: bool = False, dataset: MixtureDataset | None = None) -> DataLoader:
    """One list of micro-batches per step (StepCollator: grouped by length); for validation, one micro-batch per
    step. `dataset`: an already opened `open_dataset(cfg, validation)` (opening reads the tables)."""
    dataset = dataset if dataset is not None else open_dataset(cfg, validation)
    dataset.processor = processor
    steps = validation_batches(cfg, world_size) if validation else cfg.steps
    batch = cfg.micro_batch * world_size if validation else cfg.global_batch
    if not validation and (cfg.global_batch // world_size) % cfg.micro_batch:
        raise DataError(f"the per-rank batch {cfg.global_batch // world_size} is not a multiple of "
                        f"micro_batch {cfg.micro_batch}")
    sampler = StepSampler(dataset.sampler, batch, rank, world_size, 0 if validation else start_step, steps)
    workers = cfg.data.num_workers
    return DataLoader(dataset, batch_sampler=StepBatches(sampler),
                      collate_fn=StepCollator(cfg.data.sequence_length, cfg.micro_batch), num_workers=workers,
                      persistent_workers=False, prefetch_factor=2 if workers else None)

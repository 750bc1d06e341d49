"""Draw, ahead of a run and with every core, each generated image the run will read, into the generated-image
cache (molmo.data.generators.cache), so that during training the data workers read images back instead of
drawing them on the cores the training step needs. What a run reads is known in advance: the Molmo trainer's
mixture stream and the vision stage's image stream are both fixed by the config's seeds.

    molmo train tiny-sft --pregenerate                 # all CPUs; then `molmo train tiny-sft` reads the cache
    molmo train tiny-vision-clocks --generated_cache=auto --pregenerate=4   # and train with the same flag

The run must use the cache too: `--pregenerate` fills the config's `generated_cache` ("auto" when it names none);
`tiny-pretrain` and `tiny-sft` set "auto", the vision presets draw afresh unless given `--generated_cache`.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Iterable, Iterator

from tqdm import tqdm

from molmo.data.generators.cache import GeneratedCache
from molmo.train.config import TrainConfig

Item = tuple[str, int, int, tuple]  # kind, seed, index, sorted options


def cache_setting(cfg: Any) -> str:
    """The `generated_cache` of a Molmo-trainer config (under `data`) or of a vision-stage config."""
    return cfg.data.generated_cache if isinstance(cfg, TrainConfig) else cfg.generated_cache


def with_cache(cfg: Any) -> Any:
    """The config with a generated-image cache ("auto" when it names none)."""
    if cache_setting(cfg):
        return cfg
    if isinstance(cfg, TrainConfig):
        return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, generated_cache="auto"))
    return dataclasses.replace(cfg, generated_cache="auto")


def run_items(cfg: Any) -> list[Item]:
    """Every generated image (kind, seed, index, options) the run reads, once each, in first-use order."""
    from molmo.train.vision_pretrain import VisionPretrainConfig, run_images
    if isinstance(cfg, VisionPretrainConfig):
        drawn: Iterable = run_images(cfg)
    else:
        drawn = _trainer_items(cfg)
    return list(dict.fromkeys((k, s, i, tuple(sorted(o.items()))) for k, s, i, o in drawn))


def _generated(items: Any) -> Any:
    """The GeneratorSource behind a source's collection (also under an annotation-kind filter), or None."""
    from molmo.train.batches import GeneratorSource
    items = getattr(items, "items", items)
    return items if isinstance(items, GeneratorSource) else None


def _trainer_items(cfg: Any) -> Iterator[tuple[str, int, int, dict]]:
    from molmo.train.batches import open_dataset, open_source, steps_for, validation_batches
    from molmo.train.setup import TOKENIZER_SAMPLE, tokenizer_sources, trains_tokenizer
    if trains_tokenizer(cfg):  # a from-scratch tokenizer reads the first items of every source first
        for src in tokenizer_sources(cfg):
            if (gen := _generated(open_source(src, cfg.data.root))) is not None:
                yield from ((gen.kind, gen.seed, i, gen.options) for i in range(min(len(gen), TOKENIZER_SAMPLE)))
    train = open_dataset(cfg)
    positions = steps_for(cfg, sum(len(c) for c in train.collections)) * cfg.global_batch
    sets = [(train, positions)]
    if cfg.data.validation and cfg.eval_every:
        sets.append((open_dataset(cfg, validation=True), validation_batches(cfg, 1) * cfg.micro_batch))
    for dataset, n in sets:
        generated = {name: _generated(c) for name, c in zip(dataset.names, dataset.collections)}
        for name, i, _ in itertools.islice(dataset.sampler.iterate(0), n):
            if (gen := generated[name]) is not None:
                yield gen.kind, gen.seed, i % len(gen), gen.options


def _fill(job: tuple[str, Item]) -> bool:
    root, (kind, seed, index, options) = job
    cache = GeneratedCache(root)
    if cache.has(kind, seed, index, **dict(options)):
        return False
    cache.get(kind, seed, index, **dict(options))
    return True


def pregenerate(cfg: Any, workers: int | None = None, progress: bool = True) -> tuple[GeneratedCache, int, int]:
    """Fill the cache the config names (`with_cache` first for none) with the run's images; returns (cache,
    images drawn now, images of the run)."""
    cache = GeneratedCache.at(cache_setting(cfg))
    if cache is None:
        raise ValueError("the config names no generated_cache to fill")
    jobs = [(str(cache.root), item) for item in run_items(cfg)]
    workers = workers or os.cpu_count() or 1
    drawn = 0
    with tqdm(total=len(jobs), desc="pregenerate", unit="img", disable=not progress) as bar, \
            ProcessPoolExecutor(workers) as pool:
        for new in (map(_fill, jobs) if workers <= 1 else pool.map(_fill, jobs, chunksize=16)):
            drawn += new
            bar.update(1)
    return cache, drawn, len(jobs)

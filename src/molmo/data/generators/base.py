"""Shared machinery of the synthetic PixMo generators: a registry of kinds and a deterministic, parallel,
resumable writer of images + a JSONL manifest in the own-data format (`molmo.data.owndata`).

Each generator is a function `(rng: np.random.Generator, index: int, **options) -> GeneratedImage`,
registered with `@register("clocks")`. The RNG of image `index` is seeded from (seed, index), so a dataset is
the same whatever the number of worker processes, and `generate_dataset` can resume an interrupted run.

    generate_dataset("points", n=100, out="data/points", seed=0)
    # data/points/images/000000.png ..., data/points/data.jsonl (own-data lines), data/points/scenes.jsonl
"""

from __future__ import annotations

import importlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image
from tqdm import tqdm

# Modules that register generators when imported (kind -> module under molmo.data.generators).
GENERATOR_MODULES = {"points": "scenes", "clocks": "clocks", "docs": "docs", "captions": "captions"}
_REGISTRY: dict[str, Callable[..., "GeneratedImage"]] = {}


@dataclass
class GeneratedImage:
    image: Image.Image
    annotations: list[dict[str, Any]]  # own-data lines without the "image" key
    scene: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable description of what was drawn


def register(kind: str) -> Callable:
    def wrap(fn: Callable[..., GeneratedImage]) -> Callable[..., GeneratedImage]:
        _REGISTRY[kind] = fn
        return fn
    return wrap


def get_generator(kind: str) -> Callable[..., GeneratedImage]:
    if kind not in GENERATOR_MODULES:
        raise ValueError(f"unknown generator kind {kind!r}; expected one of {sorted(GENERATOR_MODULES)}")
    importlib.import_module(f"molmo.data.generators.{GENERATOR_MODULES[kind]}")
    return _REGISTRY[kind]


def example_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def generate_one(generator: str, seed: int, index: int, **options: Any) -> GeneratedImage:
    """Image `index` of generator `generator` (its options, e.g. docs' `kind`, as keywords)."""
    return get_generator(generator)(example_rng(seed, index), index, **options)


def _write_one(job: tuple[str, int, int, str, dict]) -> tuple[int, list[str], str]:
    kind, seed, index, out, options = job
    item = generate_one(kind, seed, index, **options)
    name = f"images/{index:06d}.png"
    path = Path(out) / name
    tmp = path.with_suffix(".tmp.png")
    item.image.convert("RGB").save(tmp)
    os.replace(tmp, path)  # a killed run never leaves a half-written image under the final name
    lines = [json.dumps({"image": name, **a}) for a in item.annotations]
    scene = {k: v for k, v in item.scene.items() if not k.startswith("_")}  # "_" keys: in-memory only (masks)
    return index, lines, json.dumps({"image": name, "index": index, **scene})


def generate_dataset(kind: str, n: int, out: str | Path, seed: int = 0, workers: int | None = None,
                     progress: bool = True, **options: Any) -> Path:
    """Write n images of `kind` to out/images, their annotations to out/data.jsonl and the scene
    descriptions to out/scenes.jsonl. Images already listed in the manifests are kept (resume)."""
    get_generator(kind)  # fail early on an unknown kind
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    done = _done_indices(out)
    todo = [i for i in range(n) if i not in done]
    workers = workers or min(len(todo), os.cpu_count() or 1) or 1
    jobs = [(kind, seed, i, str(out), options) for i in todo]
    bar = tqdm(total=n, initial=n - len(todo), desc=f"generate {kind}", unit="img", disable=not progress)
    with open(out / "data.jsonl", "a") as data, open(out / "scenes.jsonl", "a") as scenes:
        results = map(_write_one, jobs) if workers <= 1 else \
            ProcessPoolExecutor(workers).map(_write_one, jobs, chunksize=8)
        for _, lines, scene in results:
            for line in lines:
                data.write(line + "\n")
            scenes.write(scene + "\n")
            data.flush()
            scenes.flush()
            bar.update(1)
    bar.close()
    return out / "data.jsonl"


def _done_indices(out: Path) -> set[int]:
    """Images whose scene line was written (the scene line is written after all its annotation lines)."""
    path = out / "scenes.jsonl"
    if not path.exists():
        return set()
    done = set()
    for line in path.read_text().splitlines():
        try:
            done.add(int(json.loads(line)["index"]))
        except (ValueError, KeyError):
            break  # a line cut by a kill: everything after it is redone
    _truncate_manifest(out, done)
    return done


def _truncate_manifest(out: Path, done: set[int]) -> None:
    """Drop annotation/scene lines of images that did not finish, so a resumed run does not duplicate them."""
    for name in ("data.jsonl", "scenes.jsonl"):
        path = out / name
        if not path.exists():
            continue
        keep = []
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if int(Path(row["image"]).stem) in done:
                keep.append(line)
        path.write_text("".join(k + "\n" for k in keep))

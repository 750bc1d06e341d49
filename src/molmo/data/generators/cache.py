"""A disk cache of generated images, so that an image is drawn once and read back after: by a rerun, a resumed
run, a later stage that draws the same item, or a training run whose items `molmo data pregenerate` made ahead
of time with every core (reading an item back costs ~1 ms against 15-85 ms to draw it on the 2-core machine).

An item is keyed by (kind, seed, index, options) and by a digest of the source files its generator is drawn
with (its module and the generator modules it imports), so images drawn by older code are never served and an
edit to one generator leaves the others' items valid. Each item is a PNG, a JSON file (annotations and the scene)
and, for scenes with in-memory arrays (the points scenes' `_masks`), an .npz; the JSON is written last and marks
the item complete, every file lands under its final name atomically, so a killed writer leaves no half item.

    cache = GeneratedCache.at("auto")                 # $MOLMO_GENERATED_CACHE or ~/.cache/molmo/generated
    item = cache.get("clocks", seed=3, index=17, difficulty="easy")   # drawn and stored, or read back
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from molmo.data.generators.base import GENERATOR_MODULES, GeneratedImage, generate_one

SHARD = 1000  # items per folder


def default_root() -> Path:
    return Path(os.environ.get("MOLMO_GENERATED_CACHE") or Path.home() / ".cache" / "molmo" / "generated")


def _sources(kind: str) -> list[Path]:
    """The files generator `kind` runs: base.py, its module and, transitively, the generator modules that one
    imports (all of them for a module that draws other kinds through `get_generator`, as captions does)."""
    here, todo, seen = Path(__file__).parent, [GENERATOR_MODULES[kind]], {"base"}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((here / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{__package__}."):
                todo.append(node.module.rsplit(".", 1)[1])
            elif isinstance(node, ast.Name) and node.id == "get_generator":
                todo.extend(GENERATOR_MODULES.values())
    return sorted(here / f"{name}.py" for name in seen)


@lru_cache(maxsize=None)
def code_digest(kind: str) -> str:
    """Digest of the source generator `kind` is drawn with: a change to it starts a fresh cache for that kind."""
    h = hashlib.sha256()
    for path in _sources(kind):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class GeneratedCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def at(cls, where: str) -> "GeneratedCache | None":
        """The cache a config names: "" = none, "auto" = the default root, else a folder."""
        if not where:
            return None
        return cls(default_root() if where == "auto" else where)

    def folder(self, kind: str, seed: int, options: dict[str, Any]) -> Path:
        key = json.dumps({"options": options, "code": code_digest(kind)}, sort_keys=True, default=str)
        return self.root / f"{kind}-{seed}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    def _stem(self, kind: str, seed: int, index: int, options: dict[str, Any]) -> Path:
        return self.folder(kind, seed, options) / f"{index // SHARD:05d}" / f"{index:08d}"

    def has(self, kind: str, seed: int, index: int, **options: Any) -> bool:
        return self._stem(kind, seed, index, options).with_suffix(".json").exists()

    def get(self, kind: str, seed: int, index: int, **options: Any) -> GeneratedImage:
        """Item `index` of generator `kind`: read back when stored, else drawn (`generate_one`) and stored."""
        stem = self._stem(kind, seed, index, options)
        item = self._read(stem)
        if item is None:
            item = generate_one(kind, seed, index, **options)
            self._write(stem, item)
        return item

    def _read(self, stem: Path) -> GeneratedImage | None:
        try:
            meta = json.loads(stem.with_suffix(".json").read_text())
            with Image.open(stem.with_suffix(".png")) as im:
                image = im.copy()
            scene = meta["scene"]
            if meta["arrays"]:
                with np.load(stem.with_suffix(".npz")) as arrays:
                    scene.update({k: arrays[k] for k in meta["arrays"]})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError):
            return None  # damaged (a disk full, a foreign file): drawn again and rewritten
        return GeneratedImage(image=image, annotations=meta["annotations"], scene=scene)

    def _write(self, stem: Path, item: GeneratedImage) -> None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: v for k, v in item.scene.items() if isinstance(v, np.ndarray)}
        if arrays:
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            _write_atomic(stem.with_suffix(".npz"), buf.getvalue())
        buf = io.BytesIO()
        item.image.save(buf, format="PNG", compress_level=1)
        _write_atomic(stem.with_suffix(".png"), buf.getvalue())
        scene = {k: v for k, v in item.scene.items() if k not in arrays}
        meta = {"annotations": item.annotations, "scene": scene, "arrays": sorted(arrays)}
        _write_atomic(stem.with_suffix(".json"), json.dumps(meta, default=_jsonable).encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"scene value of type {type(value).__name__} cannot be stored in the generated-image cache")


def draw(kind: str, seed: int, index: int, cache: GeneratedCache | None, **options: Any) -> GeneratedImage:
    """`generate_one` through the cache when there is one."""
    return cache.get(kind, seed, index, **options) if cache else generate_one(kind, seed, index, **options)

"""The generated-image cache: an item read back equals the item drawn (image, annotations, scene, the dense
labels made from its masks), a damaged item is drawn again, and changing the generator code or the options
keys a different folder."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from molmo.data.generators import generate_one
from molmo.data.generators import cache as cache_module
from molmo.data.generators.cache import GeneratedCache, draw
from molmo.train.vision_labels import scene_labels

ITEMS = [("points", 3, 5, {}), ("clocks", 1, 2, {"difficulty": "easy"}), ("docs", 4, 7, {"doc_kind": "bar"}),
         ("captions", 5, 1, {"source": "clocks"})]


@pytest.mark.parametrize("kind,seed,index,options", ITEMS)
def test_an_item_read_back_equals_the_item_drawn(tmp_path, kind, seed, index, options):
    cache = GeneratedCache(tmp_path)
    fresh = generate_one(kind, seed, index, **options)
    assert not cache.has(kind, seed, index, **options)
    first = cache.get(kind, seed, index, **options)  # drawn and stored
    assert cache.has(kind, seed, index, **options)
    back = cache.get(kind, seed, index, **options)  # read back
    assert back.image.mode == fresh.image.mode
    assert np.array_equal(np.asarray(back.image), np.asarray(fresh.image))
    assert back.annotations == first.annotations
    assert set(back.scene) == set(fresh.scene)
    if kind != "captions":  # the dense vision labels (points' masks come back from the .npz)
        a, b = scene_labels(fresh), scene_labels(back)
        for field in dataclasses.fields(a):
            x, y = getattr(a, field.name), getattr(b, field.name)
            assert np.array_equal(np.asarray(x), np.asarray(y), equal_nan=np.asarray(x).dtype.kind == "f"), field.name


def test_reading_back_does_not_draw(tmp_path, monkeypatch):
    cache = GeneratedCache(tmp_path)
    cache.get("points", 0, 1)
    monkeypatch.setattr(cache_module, "generate_one", lambda *a, **k: pytest.fail("drew a stored item"))
    assert cache.get("points", 0, 1).scene["objects"]


def test_a_damaged_item_is_drawn_again(tmp_path):
    cache = GeneratedCache(tmp_path)
    cache.get("clocks", 0, 3)
    png = next(tmp_path.rglob("*.png"))
    png.write_bytes(b"not a png")
    item = cache.get("clocks", 0, 3)
    assert np.array_equal(np.asarray(item.image), np.asarray(generate_one("clocks", 0, 3).image))
    assert png.read_bytes()[:4] == b"\x89PNG"  # rewritten


def test_options_seed_and_generator_code_key_the_folder(tmp_path, monkeypatch):
    cache = GeneratedCache(tmp_path)
    base = cache.folder("docs", 0, {"doc_kind": "bar"})
    assert cache.folder("docs", 0, {"doc_kind": "line"}) != base
    assert cache.folder("docs", 1, {"doc_kind": "bar"}) != base
    monkeypatch.setattr(cache_module, "code_digest", lambda kind: "changed")
    assert cache.folder("docs", 0, {"doc_kind": "bar"}) != base


def test_each_generator_is_keyed_by_the_modules_it_draws_with():
    """Clocks draw their backgrounds with the scenes module, so a change there must redraw them; the charts do
    not, so it must not; captions draw every other kind."""
    names = lambda kind: {p.name for p in cache_module._sources(kind)}
    assert names("points") == {"base.py", "scenes.py"}
    assert names("clocks") == {"base.py", "clocks.py", "scenes.py"}
    assert names("docs") == {"base.py", "docs.py", "docs_charts.py"}
    assert names("captions") >= names("points") | names("clocks") | names("docs") | {"captions.py"}
    assert cache_module.code_digest("docs") != cache_module.code_digest("clocks")


def test_no_cache_draws_and_at_names_the_folder(tmp_path, monkeypatch):
    assert GeneratedCache.at("") is None
    monkeypatch.setenv("MOLMO_GENERATED_CACHE", str(tmp_path / "env"))
    assert GeneratedCache.at("auto").root == tmp_path / "env"
    assert GeneratedCache.at(str(tmp_path / "x")).root == tmp_path / "x"
    item = draw("points", 0, 2, None)
    assert np.array_equal(np.asarray(item.image), np.asarray(generate_one("points", 0, 2).image))
    assert not (tmp_path / "env").exists()

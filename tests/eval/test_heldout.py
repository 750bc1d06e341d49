"""The held-out set builder: every scoring kind present, one row per image and kind, images resolvable."""

import json
from collections import Counter

import numpy as np
from PIL import Image

from molmo.eval.heldout import build_heldout, row_kind
from molmo.eval.runner import own_data_items


def test_heldout_set_has_each_kind_once_per_image(tmp_path):
    path = build_heldout(tmp_path / "heldout", n=1)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = Counter(row_kind(r) for r in rows)
    assert set(kinds) == {"count", "point", "how_many", "clock", "bar_value"}
    assert max(Counter((r["image"], row_kind(r)) for r in rows).values()) == 1
    assert all((path.parent / r["image"]).is_file() for r in rows)
    assert len(list(own_data_items(path))) == len(rows)  # the eval runner reads every row
    assert not any(r["image"].startswith("docs/") and row_kind(r) == "how_many" for r in rows)


def test_hard_heldout_draws_the_level_no_tiny_preset_trains_on(tmp_path):
    from molmo.train.tiny_presets import _tiny_sources
    trained = {s.options.get("difficulty", "normal") for stage in ("pretrain", "sft") for s in _tiny_sources(stage)[0]}
    assert "hard" not in trained
    from molmo.data.generators import generate_one
    from molmo.eval.heldout import SETS
    path = build_heldout(tmp_path / "hard", n=1, difficulty="hard")
    for kind, seed, options in SETS:
        written = np.asarray(Image.open(path.parent / kind / "images" / "000000.png").convert("RGB"))
        hard, normal = (np.asarray(generate_one(kind, seed, 0, difficulty=d, **options).image.convert("RGB"))
                        for d in ("hard", "normal"))
        assert np.array_equal(written, hard)
        assert written.shape != normal.shape or not np.array_equal(written, normal)


def test_target_counts_ask_each_point_scene_about_its_target_group(tmp_path):
    from molmo.data.generators import generate_one
    from molmo.data.generators.scenes import PLURAL
    from molmo.eval.heldout import SETS
    path = build_heldout(tmp_path / "heldout", n=3).parent / "target_counts.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    _, seed, options = SETS[0]
    assert [r["image"] for r in rows] == [f"points/images/{i:06d}.png" for i in range(3)]
    for i, row in enumerate(rows):
        scene = generate_one("points", seed, i, **options).scene
        t = scene["target"]
        assert row["question"] == f"How many {t['colour']} {PLURAL[t['shape']]} are there?"
        assert row["answer"] == str(sum(o["colour"] == t["colour"] and o["shape"] == t["shape"]
                                        for o in scene["objects"]))
        assert (path.parent / row["image"]).is_file()
    assert [g for g, _ in own_data_items(path)] == ["qa"] * 3

"""binding_heldout: two-group scenes whose asked group differs from the other by colour only, or by colour and
shape, in the layout count_sources reads."""

from __future__ import annotations

import json

from research.tiny_molmo.binding_heldout import build
from research.tiny_molmo.count_sources import count_sources


def test_each_set_asks_one_of_two_groups_that_differ_as_named_and_count_sources_reads_it(tmp_path):
    for path in build(tmp_path, n=8):
        folder = path.parent
        scenes = [json.loads(line) for line in (folder / "points" / "scenes.jsonl").open()]
        rows = [json.loads(line) for line in path.open()]
        assert len(scenes) == len(rows) == 8
        for scene, row in zip(sorted(scenes, key=lambda s: s["image"]), rows):
            (a, b), target = scene["groups"], scene["target"]
            assert target in (a, b) and a["colour"] != b["colour"]
            assert (a["shape"] == b["shape"]) == (folder.name == "colour")
            assert row["image"] == f"points/{scene['image']}"
            assert f"{target['colour']} " in row["question"]
        answers = [r["answer"] for r in rows]
        (folder / "echo").mkdir()
        (folder / "echo" / "predictions.jsonl").write_text("".join(
            json.dumps({"id": f"{r['image']}#0", "prediction": a}) + "\n" for r, a in zip(rows, answers)))
        assert count_sources(folder, folder / "echo")["exact"] == 1  # the answers agree with the scenes' counts

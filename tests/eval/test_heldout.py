"""The held-out set builder: every scoring kind present, one row per image and kind, images resolvable."""

import json
from collections import Counter

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

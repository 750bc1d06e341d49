"""The user guide stays true: its own-data example (every line kind) validates and reads, and the README and
`--help` point at the guide."""

from __future__ import annotations

import json
import re
from pathlib import Path

from PIL import Image

from molmo.data.owndata import read_own_data, validate_own_data

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "USER_GUIDE.md"


def guide_example_lines() -> list[dict]:
    block = re.search(r"Every kind of line[^:]*:\s*```json\n(.*?)```", GUIDE.read_text(), re.S).group(1)
    return [json.loads(line) for line in block.splitlines() if line.strip()]


def test_the_guides_own_data_example_is_valid(tmp_path):
    rows = guide_example_lines()
    for row in rows:
        (tmp_path / row["image"]).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (640, 480)).save(tmp_path / row["image"])
    data = tmp_path / "my.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert validate_own_data(data) == []
    kinds = {a.kind for ex in read_own_data(data) for a in ex.annotations}
    assert kinds == {"qa", "mc", "point", "count", "caption", "messages"}  # every kind the reader knows, shown
    assert {r.get("metric") for r in rows} >= {"exact", "clock", "relaxed", "anls", "mc"}


def test_readme_links_the_guide():
    assert "docs/USER_GUIDE.md" in (REPO / "README.md").read_text()

"""Writes the bundled sample images (`src/molmo/assets/samples/`) used by `molmo demo`, the README and the web
page's examples, from the synthetic PixMo generators with fixed seeds, so they match what the embedded model
was trained on. Run once; the PNGs are committed:

    python -m molmo.serve.samples [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from molmo.assets import SAMPLES_DIR
from molmo.data.generators.base import generate_one

# file name -> (generator kind, seed, index, options)
SAMPLES = {
    "shapes.png": ("points", 7, 0, {"size": (384, 288)}),
    "clock.png": ("clocks", 7, 1, {"size": 320}),
    "chart.png": ("docs", 7, 2, {"kind": "any"}),
}


def write_samples(out: Path = SAMPLES_DIR) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written, notes = [], {}
    for name, (kind, seed, index, options) in SAMPLES.items():
        g = generate_one(kind, seed, index, **options)
        g.image.convert("RGB").save(out / name, optimize=True)
        notes[name] = {"generator": kind, "seed": seed, "index": index, "annotations": g.annotations}
        written.append(out / name)
        print(f"wrote {out / name} ({g.image.width}x{g.image.height})")
    (out / "samples.json").write_text(json.dumps(notes, default=str))
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR)
    write_samples(parser.parse_args().out)

"""Where the files shipped inside the package live (package data, not code): the embedded default model and
the sample images. Every module reads these paths from here.

    from molmo.assets import DEFAULT_MODEL_DIR, SAMPLES_DIR
"""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_DIR = ASSETS_DIR / "tiny-molmo"  # written by scripts/ship_tiny_molmo.py
SAMPLES_DIR = ASSETS_DIR / "samples"  # written by `python -m molmo.serve.samples`

"""Research tests import `research.*` from the repository root, which pytest's importlib mode does not put on
sys.path; the product suite (testpaths = tests) never collects this folder.

    python -m pytest -q research
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

"""`python -m molmo.train PRESET [--key=value …]`: the entry point for torchrun (see molmo.train.cli)."""

import sys

from molmo.train.cli import main

sys.exit(main())

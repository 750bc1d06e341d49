"""Conformance with the reference Molmo code: `molmo conformance DIR` checks pre-processing (`preprocess`),
the model's forward pass, generation and loss (`forward`) and the benchmark metrics (`metrics`) against the
outputs stored in a fixture folder (the layout of ../shared/conformance).

    molmo conformance ../shared/conformance --only preprocess,forward
"""

from molmo.conformance.cases import CaseResult, MissingFixture
from molmo.conformance.runner import PARTS, add_arguments, run, run_parts

__all__ = ["PARTS", "CaseResult", "MissingFixture", "add_arguments", "run", "run_parts"]

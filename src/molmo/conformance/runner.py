"""`molmo conformance DIR [--only preprocess,forward,metrics]`: check this install against
outputs of the reference Molmo code (the folder layout of ../shared/conformance).

Each part (a module of this package) yields `CaseResult`s; this module runs them, prints one line per
case with its largest difference, and exits non-zero on any failure.

    molmo conformance ../shared/conformance --only preprocess,forward
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from molmo.conformance.cases import CaseResult, MissingFixture

PARTS = {
    "preprocess": "molmo.conformance.preprocess",
    "forward": "molmo.conformance.forward",
    "metrics": "molmo.conformance.metrics",
}


def run_parts(root: Path, parts: list[str]) -> list[CaseResult]:
    results: list[CaseResult] = []
    for part in parts:
        folder = root / part
        if not folder.is_dir():
            results.append(CaseResult(part, "(folder)", False, float("nan"), f"missing folder {folder}"))
            continue
        module = importlib.import_module(PARTS[part])
        try:
            results.extend(module.run_cases(root))
        except MissingFixture as e:  # the part's index: none of its cases can be listed
            results.append(CaseResult(part, "(index)", False, float("nan"), str(e)))
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="conformance folder (e.g. ../shared/conformance)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {','.join(PARTS)}")


def run(args: argparse.Namespace) -> int:
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"molmo conformance: unknown part(s) {unknown}; choose from {list(PARTS)}")
    if not args.dir.is_dir():
        raise SystemExit(f"molmo conformance: {args.dir} is not a directory")
    results = run_parts(args.dir, parts)
    for r in results:
        status = "PASS" if r.passed else "FAIL"
        print(f"{status}  {r.part:<10} {r.case:<40} max_diff={r.max_diff:.3g}  {r.detail}")
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or not results else 0

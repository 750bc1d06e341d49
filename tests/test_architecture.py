"""The package's import graph: every import (module level or inside a function) points down the layer order
below or stays in its layer, nothing imports the research code, and no modules import each other in a circle.

    python -m pytest -q tests/test_architecture.py
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module may import its own layer and the layers below. The order is the data flow:
# text/image facts -> pre-processing -> model -> checkpoints -> data -> the API -> evaluation, serving and
# conformance (which drive the model through the API or check its parts) -> training (whose in-training
# evaluation runs the evaluation code) -> the command line.
LAYERS = [
    {"molmo", "text", "image", "precision", "assets", "cli_args", "extras", "choices"},  # shared facts, utilities
    {"preprocess"},
    {"model"},
    {"checkpoint"},
    {"data"},
    {"api"},
    {"eval", "serve", "conformance"},
    {"train"},
    {"cli"},  # molmo.cli and each package's `cli` module: command front-ends over everything
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    parts = module.split(".")
    if parts[-1] in ("cli", "__main__") and len(parts) > 2:  # molmo.<package>.cli: its command front-end
        return "cli"
    return parts[1] if len(parts) > 1 else parts[0]


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file, wherever it is."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            # `from molmo.x import y` may name a sub-module y
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                    if (SRC / Path(*node.module.split("."), alias.name)).with_suffix(".py").is_file()]
    return out


def graph() -> dict[str, list[tuple[int, str]]]:
    return {module_name(p): imports(p) for p in sorted(SRC.rglob("*.py"))}


def test_every_package_has_a_layer():
    units = {unit_of(m) for m in graph()}
    assert units <= set(LAYER), f"give these a layer in LAYERS: {sorted(units - set(LAYER))}"


def test_no_import_points_up_a_layer():
    upward = []
    for module, found in graph().items():
        for line, target in found:
            if target.split(".")[0] == "molmo" and LAYER[unit_of(target)] > LAYER[unit_of(module)]:
                upward.append(f"{module}:{line} imports {target} ({unit_of(module)} -> {unit_of(target)})")
    assert not upward, "\n".join(upward)


def test_the_package_never_imports_research_or_scripts():
    bad = [f"{m}:{line} imports {t}" for m, found in graph().items() for line, t in found
           if t.split(".")[0] in ("research", "scripts", "tests", "benchmarks")]
    assert not bad, "\n".join(bad)


def find_cycles(edges: dict[str, list[str]]) -> list[str]:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in edges.get(m, []):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    return cycles


def test_no_import_cycles_between_modules():
    modules = graph()
    edges = {m: sorted({t for _, t in found if t in modules and t != m}) for m, found in modules.items()}
    # a package's __init__ re-exporting its own modules is not a cycle through them
    edges = {m: [t for t in ts if m != t.rsplit(".", 1)[0] and t != m.rsplit(".", 1)[0]] for m, ts in edges.items()}
    cycles = find_cycles(edges)
    assert not cycles, "\n".join(cycles)


def test_the_checks_can_fail(tmp_path):
    """A model module importing the trainer is an upward import; a -> b -> a is a cycle."""
    global SRC
    fake = tmp_path / "molmo" / "model"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("def f():\n    from molmo.train.trainer import train\n")
    real, SRC = SRC, tmp_path
    try:
        assert graph() == {"molmo.model.bad": [(2, "molmo.train.trainer")]}
    finally:
        SRC = real
    assert LAYER[unit_of("molmo.train.trainer")] > LAYER[unit_of("molmo.model.bad")]
    assert find_cycles({"a": ["b"], "b": ["a"], "c": ["a"]}) == ["a -> b -> a"]

"""The package's import structure (docs/architecture.md): every mssr import — top-level or inside a function — goes
from a layer to one drawn below it, and no module imports, directly or through others, a module that imports
it back."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# package -> the mssr packages it may import (docs/architecture.md's table; the utilities beside the layers —
# config, io, progress, environment and the package root's __version__ — are open to every layer)
UTILITIES = {"config", "io", "progress", "environment", "mssr"}
ALLOWED = {
    "algos": set(),
    "data": set(),
    "rewards": set(),
    "models": {"data"},
    "rollout": {"models", "algos"},
    "evaluation": {"rollout", "rewards", "data", "models"},
    "sft": {"evaluation", "rollout", "models", "rewards", "data"},
    "trainer": {"sft", "algos", "rollout", "models", "rewards", "evaluation", "data"},
    "experiments": {"trainer", "sft", "algos", "data"},
    "cli": {"experiments", "trainer", "sft", "evaluation", "rollout", "models", "rewards", "data", "algos"},
    "__main__": {"cli"},
    **{u: set() for u in UTILITIES},
}


def _modules() -> dict[str, Path]:
    out = {}
    for f in (SRC / "mssr").rglob("*.py"):
        parts = f.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(mod: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The mssr modules `mod` imports anywhere in its source (names resolved to the module defining them)."""
    deps: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for n in names:
            if not n.startswith("mssr"):
                continue
            while n and n not in known:  # a name inside a module -> the module
                n = n.rpartition(".")[0]
            if n and n != mod:
                deps.add(n)
    return deps


def _layer(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "mssr"


def test_every_import_goes_down_the_layers():
    known = _modules()
    wrong = []
    for mod, path in known.items():
        for dep in _imports(mod, path, known):
            a, b = _layer(mod), _layer(dep)
            if a != b and b not in ALLOWED[a] | UTILITIES:
                wrong.append(f"{mod} -> {dep}")
    assert not wrong, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles_between_modules():
    known = _modules()
    graph = {m: _imports(m, p, known) for m, p in known.items()}
    # a package's __init__ re-exporting its modules is not a cycle with them: count edges out of __init__s
    # only to other packages
    for m in graph:
        if known[m].name == "__init__.py":
            graph[m] = {d for d in graph[m] if not d.startswith(m + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append([*stack[stack.index(d) :], d])
            elif d not in state:
                visit(d, [*stack, d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_trainer_and_rollout_parts_stay_small():
    """docs/architecture.md, "The trainer's parts": trainer.py under 600 lines, and in mssr.trainer and
    mssr.rollout no class over 25 methods and no function over 80 lines (the redesign's limits)."""
    assert len((SRC / "mssr/trainer/trainer.py").read_text().splitlines()) < 600
    big = []
    for pkg in ("trainer", "rollout"):
        for f in sorted((SRC / "mssr" / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.ClassDef):
                    n = sum(isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) for b in node.body)
                    if n > 25:
                        big.append(f"{f.name}: class {node.name} has {n} methods")
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > 80:
                        big.append(f"{f.name}: {node.name} is {n} lines")
    assert not big, big

"""Grading is reentrant: the rewards package holds no module-level mutable state — no ``global`` rebinding, and its
module-level tables are immutable (tuples, ``MappingProxyType``), so one verification cannot change another's.
The one exception is the process-wide registry of reward worker pools (``runner._POOLS``, guarded by a lock)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REWARDS = Path(__file__).resolve().parents[2] / "src" / "mssr" / "rewards"
ALLOWED = {("__init__.py", "__all__"), ("runner.py", "_POOLS")}
MUTABLE = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)


def _findings() -> list[str]:
    out = []
    for f in sorted(REWARDS.rglob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, MUTABLE):
                target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                if (f.name, ast.unparse(target)) not in ALLOWED:
                    out.append(f"{f.name}:{node.lineno} {ast.unparse(target)} is a mutable table")
        out += [f"{f.name}:{n.lineno} global {n.names}" for n in ast.walk(tree) if isinstance(n, ast.Global)]
    return out


def test_rewards_hold_no_module_level_mutable_state():
    assert _findings() == []


def test_the_tables_refuse_changes():
    from mssr.rewards import official_rules, program
    from mssr.rewards.builtin import BUILTIN

    for table in (BUILTIN, official_rules.RULES, program._MATH):
        with pytest.raises(TypeError):
            table["x"] = 1  # type: ignore[index]

"""docs/results/reasoning/paired_eval.py: the paired per-item difference of two `mssr eval` outputs."""

import json
import random
from pathlib import Path

import pytest

from .conftest import load_script


def _module():
    return load_script("docs/results/reasoning/paired_eval.py")


def _write(d: Path, rows: list[tuple[str, str, int, int]]) -> Path:
    (d / "results").mkdir(parents=True)
    lines = [json.dumps({"id": i, "category": fam, "n": n, "c": c}) for i, fam, c, n in rows]
    (d / "results" / "builtin.jsonl").write_text("\n".join(lines) + "\n")
    return d


def test_paired_difference_and_bootstrap_share_by_hand(tmp_path, capsys, monkeypatch):
    m = _module()
    a = _write(
        tmp_path / "a", [("x0", "f", 0, 2), ("x1", "f", 1, 2), ("x2", "g", 2, 2), ("only_a", "g", 0, 2)]
    )
    b = _write(tmp_path / "b", [("x0", "f", 1, 2), ("x1", "f", 1, 2), ("x2", "g", 2, 2)])
    ra, rb = m.load(a), m.load(b)
    assert ra["builtin/x0"] == ("f", 0.0) and rb["builtin/x0"] == ("f", 0.5)
    # differences 0.5, 0, 0 over the 3 shared items: mean 1/6; B > A in a resample iff item x0 is drawn,
    # probability 1 − (2/3)^3 = 19/27
    d, lo, hi, win = m.paired([0.0, 0.5, 1.0], [0.5, 0.5, 1.0], 20000, random.Random(0))
    assert d == pytest.approx(1 / 6)
    # a resample's mean is k/6 with k ~ Binomial(3, 1/3): P(k = 0) = 8/27 > 0.025 and P(k = 3) = 1/27 > 0.025
    assert lo == 0.0 and hi == pytest.approx(0.5)
    assert win == pytest.approx(19 / 27, abs=0.01)
    monkeypatch.setattr("sys.argv", ["paired_eval.py", str(a), str(b), "--boot", "500"])
    m.main()
    out = capsys.readouterr().out
    assert "3 paired items" in out
    assert "| f | 2 | 0.250 | 0.500 | +0.250 |" in out
    assert "| all | 3 | 0.500 | 0.667 | +0.167 |" in out


def test_not_an_eval_directory_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no results"):
        _module().load(tmp_path)

"""README.md stays true: its first two commands, and its Python example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mssr.io import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_setup_and_test_commands_and_ci_runs_the_test_command():
    first = _blocks("bash")[0]
    lines = [x for x in first.splitlines() if x.strip() and not x.startswith("#")]
    assert "mssr train" in lines[0] and "pip install" in lines[0]
    test_cmd = lines[1]
    assert "pytest" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines(), "CI must run exactly the README's test command"


def test_python_example_runs_as_written(tmp_path):
    code = next(b for b in _blocks("python") if "from mssr" in b)
    assert len(code.strip().splitlines()) <= 20
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", "import torch; torch.set_num_threads(1)\n" + code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1].split()
    acc, run_dir = float(last[0]), tmp_path / last[1]
    # the printed accuracy is the run's last validation, as logged
    logged = [r["val/accuracy"] for r in read_jsonl(run_dir / "metrics.jsonl") if "val/accuracy" in r]
    assert logged and 0.0 <= acc <= 1.0 and acc == logged[-1]
    assert (run_dir / "checkpoints").is_dir()

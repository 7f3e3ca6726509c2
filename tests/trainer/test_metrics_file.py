"""metrics.jsonl holds one history: a rerun without a checkpoint starts it afresh, and a write that fails
part-way (a full disk) leaves no torn line behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from mssr.io import read_jsonl
from mssr.trainer.trainer import RLTrainer


def _steps(run):
    return [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_rerun_with_no_checkpoint_starts_a_fresh_history(make_config, tmp_path):
    out = tmp_path / "run"
    RLTrainer(make_config("steps=2", out=out)).train()
    assert _steps(out) == [0, 1, 2]
    shutil.rmtree(out / "checkpoints")  # e.g. the first try died before its first checkpoint
    RLTrainer(make_config("steps=2", out=out)).train()
    assert _steps(out) == [0, 1, 2]  # was 0, 1, 2, 0, 1, 2


FULL_DISK = r"""
import resource, signal, sys
from pathlib import Path
from mssr.trainer.metrics_log import MetricsLogger
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
run = Path(sys.argv[1])
logger = MetricsLogger(run, tensorboard=False)
logger.log(1, {"a": 1.0})
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, ((run / "metrics.jsonl").stat().st_size + 40, hard))
try:
    logger.log(2, {f"metric_{i}": float(i) for i in range(50)})
except OSError as exc:
    print("failed:", exc.errno)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
logger.log(3, {"a": 3.0})
"""


def test_a_failed_metrics_write_leaves_no_torn_line(tmp_path):
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "failed:" in done.stdout  # the write of step 2 stopped part-way (EFBIG / a short write)
    # a strict reader: no torn line, and step 3 was not glued onto the remains of step 2
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 3]

"""Exact resume: 6 steps straight == 3 steps + resume 3 (bitwise parameters, identical metrics), also after a
kill -9 in the middle of writing a checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mssr.trainer.checkpoint import complete_checkpoints, latest_checkpoint
from mssr.trainer.trainer import RLTrainer

from .launch import config_args

VOLATILE = ("timing_s/", "perf/", "init/time_s")


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / f"step_{step:06d}" / "policy" / "model.safetensors"))


def _metrics(run: Path) -> dict[int, dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return {r["step"]: {k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in rows}


def _assert_same(a: Path, b: Path, steps=(4, 5, 6)) -> None:
    wa, wb = _weights(a, 6), _weights(b, 6)
    assert wa.keys() == wb.keys()
    diff = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not diff, f"parameters differ after resume: {diff[:5]}"
    ma, mb = _metrics(a), _metrics(b)
    for s in steps:
        assert ma[s] == mb[s], f"metrics of step {s} differ"


@pytest.mark.parametrize("name,extra", [("mssr", []), ("grpo", ["algorithm.rollouts_per_prompt=4"])])
def test_six_steps_straight_equal_three_plus_resumed_three(make_config, tmp_path, name, extra):
    a, b = tmp_path / "straight", tmp_path / "resumed"
    common = [f"algorithm.name={name}", *extra, "checkpoint.keep_last=10"]
    RLTrainer(make_config(*common, "steps=6", out=a)).train()
    RLTrainer(make_config(*common, "steps=3", out=b)).train()
    resumed = RLTrainer(make_config(*common, "steps=6", out=b))
    assert resumed.maybe_resume() == b / "checkpoints" / "step_000003"
    if resumed.tracker is not None:  # the tracker came back from the checkpoint, not the 0.5 default
        assert len(resumed.tracker) > 0
    resumed.train()
    _assert_same(a, b)
    starts = [json.loads(x) for x in (b / "environment.jsonl").read_text().splitlines()]
    assert [e["step"] for e in starts] == [0, 3]  # the first start and the resume, each with its machine
    assert {e["torch"] for e in starts} == {torch.__version__}


KILL_SCRIPT = r"""
import os, signal, sys
import torch
torch.set_num_threads(1)
import mssr.trainer.checkpointer as C
import mssr.trainer.trainer as T
from mssr.config import load_config
from mssr.trainer.config import TrainConfig

kill_at = int(sys.argv[1])
real = C.save_state
def dying_save_state(path, state):
    if state["step"] == kill_at:
        path.write_bytes(b"half a checkpoint")
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, state)
C.save_state = dying_save_state
cfg = load_config(TrainConfig, None, sys.argv[2:])
T.RLTrainer(cfg).train()
"""


def test_resume_after_kill_minus_nine_during_checkpoint_write(make_config, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    RLTrainer(make_config("steps=6", "checkpoint.every=1", "checkpoint.keep_last=10", out=straight)).train()
    cfg = make_config("steps=6", "checkpoint.every=1", "checkpoint.keep_last=10", out=killed)
    args = config_args(cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, "4", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    ckpts = killed / "checkpoints"
    assert any(p.name.startswith(".tmp-step_000004") for p in ckpts.iterdir())  # the torn write is there
    assert latest_checkpoint(ckpts).name == "step_000003"  # and ignored
    RLTrainer(make_config("steps=6", "checkpoint.every=1", "checkpoint.keep_last=10", out=killed)).train()
    assert [p.name for p in complete_checkpoints(ckpts)][-1] == "step_000006"
    assert not any(p.name.startswith(".tmp-") for p in ckpts.iterdir())  # cleaned up
    _assert_same(straight, killed)

"""Faults do not stop training and are counted: raising rewards, NaN losses, Ctrl-C, truncation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch

import mssr.algos.objective as objective
from mssr.trainer.checkpoint import latest_checkpoint
from mssr.trainer.trainer import RLTrainer

from .conftest import HERE


def _rows(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def test_raising_reward_is_counted_and_excluded(make_config, tmp_path):
    cfg = make_config(
        f"reward.spec={HERE / 'plugin_rewards.py'}:raises_on_odd", "steps=2", out=tmp_path / "r"
    )
    summary = RLTrainer(cfg).train()
    rows = [r for r in _rows(tmp_path / "r") if r["step"] > 0]
    assert summary["steps"] == 2
    errors = sum(r["reward/errors"] for r in rows)
    assert errors > 0
    assert all(r["train/excluded_frac"] == r["reward/errors"] / 8 for r in rows)


def test_none_reward_excludes_the_sample_from_tracker_and_loss(make_config, tmp_path):
    cfg = make_config(f"reward.spec={HERE / 'plugin_rewards.py'}:none_on_odd", "steps=2", out=tmp_path / "n")
    trainer = RLTrainer(cfg)
    trainer.train()
    assert any(r["train/excluded_frac"] > 0 for r in _rows(tmp_path / "n") if r["step"] > 0)
    assert trainer.counters["reward_errors"] == 0


def test_non_finite_loss_skips_the_update(make_config, tmp_path, monkeypatch):
    real = objective.policy_loss

    def nan_loss(*args, **kwargs):
        out = real(*args, **kwargs)
        out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(objective, "policy_loss", nan_loss)
    trainer = RLTrainer(make_config("steps=1", out=tmp_path / "nan"))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert trainer.counters["skipped_updates"] == 2  # 8 prompts / mini_batch_prompts 4
    assert all(torch.equal(p, before[n]) for n, p in trainer.model.named_parameters())
    assert _rows(tmp_path / "nan")[-1]["train/skipped_updates"] == 2


def test_truncated_responses_are_flagged_and_can_be_masked(make_config, tmp_path):
    trainer = RLTrainer(
        make_config("steps=1", "rollout.max_new_tokens=2", "rollout.mask_truncated=true", out=tmp_path / "t")
    )
    trainer.train()
    row = _rows(tmp_path / "t")[-1]
    assert row["response_length/clip_ratio"] == 1.0  # a random tiny policy never ends within 2 tokens
    assert "critic/advantages/std" not in row  # every response masked out: no advantage statistics


def test_ctrl_c_stops_at_a_safe_point_and_checkpoints(make_config, tmp_path):
    from mssr.config import to_dict

    cfg = make_config("steps=200", out=tmp_path / "c")
    args = []
    for sec, vals in to_dict(cfg).items():
        if isinstance(vals, dict):
            args += [
                f"{sec}.{k}={v}" for k, v in vals.items() if v is not None and not isinstance(v, (dict, list))
            ]
        elif vals is not None:
            args.append(f"{sec}={vals}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mssr", "train", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = tmp_path / "c" / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]  # an interrupted run is not a finished one
    last = err.strip().splitlines()[-1]
    assert last.startswith("mssr train: interrupted by SIGINT after step ") and "resume" in last
    steps = int(last.split("after step ")[1].split("/")[0])
    assert 1 <= steps < 200
    ckpt = latest_checkpoint(tmp_path / "c" / "checkpoints")
    assert ckpt is not None and ckpt.name == f"step_{steps:06d}"

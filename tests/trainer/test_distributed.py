"""Data parallelism: a 2-process torchrun (gloo, CPU) run equals a 1-process run with the same global batch."""

from __future__ import annotations

import subprocess

import torch
from safetensors.torch import load_file

from mssr.trainer.checkpoint import load_state
from mssr.trainer.trainer import RLTrainer

from .launch import config_args, torchrun_cmd, worker_env


def test_two_process_torchrun_matches_one_process(make_config, tmp_path):
    common = [
        "steps=3",
        "algorithm.name=mssr",
        "rollout.rollouts_per_step=8",
        "rollout.gen_batch_size=4",  # chunks of 4 prompts: each rank's shard of 4 is one seeded chunk
        "optim.mini_batch_prompts=4",
        "optim.micro_batch_size=2",
    ]
    one, two = tmp_path / "one", tmp_path / "two"
    RLTrainer(make_config(*common, out=one)).train()
    cmd = torchrun_cmd(config_args(make_config(*common, out=two)))
    proc = subprocess.run(cmd, env=worker_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '"world_size": 2' in proc.stdout, proc.stdout[-2000:]
    w1 = load_file(str(one / "checkpoints/step_000003/policy/model.safetensors"))
    w2 = load_file(str(two / "checkpoints/step_000003/policy/model.safetensors"))
    max_diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    print(f"max |Δparam| 1-process vs 2-process after 3 steps: {max_diff:.3g}")
    assert max_diff < 1e-5, f"2-process run drifted from the 1-process run by {max_diff}"
    t1 = load_state(one / "checkpoints/step_000003/trainer_state.pt")["tracker"]
    t2 = load_state(two / "checkpoints/step_000003/trainer_state.pt")["tracker"]
    assert t1["keys"] == t2["keys"]
    assert torch.equal(t1["alpha"], t2["alpha"]) and torch.equal(t1["beta"], t2["beta"])
    # (each rank also checks every step that all ranks hold the same tracker, and stops if not)

"""Precision and sharding: fp32 master weights under bf16 compute, and FSDP2 across 2 gloo processes.

The FSDP tests launch ``torchrun`` (2 CPU processes, gloo) and compare with a 1-process run of the same global
batch, as ``test_distributed.py`` does for the replicated strategy.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mssr.config import ConfigError
from mssr.trainer.checkpoint import complete_checkpoints, load_state
from mssr.trainer.parallel import Replicated, resolve_compute_dtype
from mssr.trainer.trainer import RLTrainer

from .launch import config_args, torchrun_cmd, worker_env

COMMON = [
    "algorithm.name=mssr",
    "rollout.rollouts_per_step=8",
    "rollout.gen_batch_size=4",  # chunks of 4 prompts: each rank's shard of 4 is one seeded chunk
    "optim.mini_batch_prompts=4",
    "optim.micro_batch_size=2",
]


def _changed_fraction(trainer: RLTrainer, before: dict[str, torch.Tensor]) -> float:
    """Fraction of trainable entries that AdamW had a gradient for (second moment > 0) and that changed."""
    changed = total = 0
    for name, p in trainer.model.named_parameters():
        if not p.requires_grad:
            continue
        moved = trainer.optimizer.state[p]["exp_avg_sq"] > 0
        changed += int(((p.detach() != before[name]) & moved).sum())
        total += int(moved.sum())
    return changed / total


def test_bf16_compute_keeps_small_updates_with_fp32_master_weights(make_config, tmp_path):
    """At the paper's lr 1e-6, bf16 compute over fp32 master weights moves ≥ 99 % of the entries that got a
    gradient; with bf16 parameters (the opt-in pure mode) most of those updates round away."""
    cfg = make_config("steps=1", "model.dtype=bfloat16", "optim.lr=1e-6", out=tmp_path / "mixed")
    trainer = RLTrainer(cfg)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert trainer.strategy.compute_dtype == torch.bfloat16
    assert trainer.old_logprobs_from == "trainer"  # bf16 sampler log-probs are not the training forward's
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    mixed = _changed_fraction(trainer, before)
    print(f"lr 1e-6, bf16 compute: fp32 master weights moved {mixed:.4f} of the entries with a gradient")
    assert mixed >= 0.99, f"only {mixed:.3f} of the entries moved under fp32 master weights"

    pure_cfg = make_config(
        "steps=1",
        "model.dtype=bfloat16",
        "model.param_dtype=bfloat16",
        "optim.lr=1e-6",
        out=tmp_path / "pure",
    )
    pure = RLTrainer(pure_cfg)
    assert all(p.dtype == torch.bfloat16 for p in pure.model.parameters())
    before = {n: p.detach().clone() for n, p in pure.model.named_parameters()}
    pure.train()
    moved = _changed_fraction(pure, before)
    print(f"lr 1e-6, bf16 parameters: moved {moved:.4f}")
    assert moved < 0.5  # the rounding the master weights avoid


def test_pure_low_precision_warns_at_small_lr(make_config, tmp_path, caplog):
    cfg = make_config("model.dtype=bfloat16", "model.param_dtype=bfloat16", "optim.lr=1e-6")
    with caplog.at_level(logging.WARNING, logger="mssr.train"):
        RLTrainer(cfg)
    assert "round" in caplog.text and "param_dtype=float32" in caplog.text


def test_precision_settings_that_cannot_work_are_refused(make_config):
    with pytest.raises(ConfigError, match="float16 needs loss scaling"):
        RLTrainer(make_config("model.dtype=float16"))
    with pytest.raises(ConfigError, match="param_dtype=bfloat16 with compute dtype"):
        RLTrainer(make_config("model.dtype=float32", "model.param_dtype=bfloat16"))


def test_autocast_runs_linear_layers_in_the_compute_dtype():
    lin = torch.nn.Linear(4, 4)
    st = Replicated(torch.bfloat16, torch.float32, torch.device("cpu"))
    with st.gathered(lin):
        assert lin(torch.randn(2, 4)).dtype == torch.bfloat16
    assert lin.weight.dtype == torch.float32
    plain = Replicated(torch.float32, torch.float32, torch.device("cpu"))
    with plain.gathered(lin):
        assert lin(torch.randn(2, 4)).dtype == torch.float32


def test_auto_dtype_follows_the_measured_presets():
    cpu = torch.device("cpu")
    assert resolve_compute_dtype("auto", cpu, preset="tiny", fast_cpu_bf16=True) == torch.float32
    assert resolve_compute_dtype("auto", cpu, preset="base", fast_cpu_bf16=True) == torch.bfloat16
    assert resolve_compute_dtype("auto", cpu, preset="base", fast_cpu_bf16=False) == torch.float32
    assert resolve_compute_dtype("auto", cpu, preset=None, fast_cpu_bf16=True) == torch.float32
    assert resolve_compute_dtype("bfloat16", cpu, preset="tiny", fast_cpu_bf16=False) == torch.bfloat16


# ------------------------------------------------------------------------------------------------ FSDP2
def _run(cmd: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=worker_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / f"checkpoints/step_{step:06d}/policy/model.safetensors"))


def test_fsdp_two_processes_match_one_and_resume_after_kill(make_config, tmp_path):
    """FSDP2 over 2 gloo processes: steps 1-2, kill -9 of the whole job during step 3's checkpoint write,
    automatic resume to step 3. Equal to an uninterrupted 1-process run within 1e-5, with identical trackers;
    the consolidated export loads as a plain policy and generates."""
    one, two = tmp_path / "one", tmp_path / "two"
    RLTrainer(make_config("steps=3", *COMMON, out=one)).train()

    fsdp = ("parallel.strategy=fsdp", "checkpoint.every=1", "checkpoint.keep_last=5")
    args = config_args(make_config("steps=3", *COMMON, *fsdp, out=two))
    proc = subprocess.Popen(
        torchrun_cmd(args),
        env=worker_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    ckpts = two / "checkpoints"
    deadline = time.time() + 600
    try:  # kill the whole job (launcher and both ranks) as soon as step 2 is published
        while time.time() < deadline and proc.poll() is None:
            if any(p.name == "step_000002" for p in complete_checkpoints(ckpts)):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        proc.wait(timeout=60)
    done = [p.name for p in complete_checkpoints(ckpts)]
    assert done[-1] in ("step_000002", "step_000003"), done
    sharded = ckpts / "step_000002" / "sharded"
    assert sorted(p.name for p in sharded.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    assert "optimizer" not in load_state(ckpts / "step_000002" / "trainer_state.pt")  # it is in sharded/

    out = _run(torchrun_cmd(args))
    assert '"world_size": 2' in out.stdout, out.stdout[-2000:]
    w1, w2 = _weights(one, 3), _weights(two, 3)
    assert set(w1) == set(w2)  # a tied lm_head is saved once, as by the unsharded model
    max_diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    print(f"max |Δparam| 1-process vs FSDP 2-process (killed and resumed) after 3 steps: {max_diff:.3g}")
    assert max_diff < 1e-5
    t1 = load_state(one / "checkpoints/step_000003/trainer_state.pt")["tracker"]
    t2 = load_state(two / "checkpoints/step_000003/trainer_state.pt")["tracker"]
    assert t1["keys"] == t2["keys"]
    assert torch.equal(t1["alpha"], t2["alpha"]) and torch.equal(t1["beta"], t2["beta"])

    from mssr.models import load_policy
    from mssr.rollout.engine import HFRolloutEngine
    from mssr.rollout.prompting import records_to_prompts
    from mssr.trainer.setup import build_data

    policy = load_policy(two / "checkpoints/step_000003/policy")
    records, _ = build_data(make_config())
    prompts = records_to_prompts(records[:2], policy.processor, namespace="train")
    batch = HFRolloutEngine(policy.model, policy.processor).generate(prompts, greedy=True, max_new_tokens=4)
    assert batch.response_ids.shape[0] == 2 and batch.response_mask.sum() > 0


def test_fsdp_with_bf16_compute_and_uneven_micro_batches(make_config, tmp_path):
    """FSDP2 with bf16 mixed precision (fp32 sharded master weights, fp32 gradient reduction) and gradient
    checkpointing; micro-batches
    of 3 rows over 4-row mini-batches split unevenly across ranks, so a rank runs zero-weighted padding
    micro-batches to keep the collectives in step."""
    run = tmp_path / "bf16"
    cfg = make_config(
        *COMMON,
        "parallel.strategy=fsdp",
        "model.dtype=bfloat16",
        "optim.micro_batch_size=1",
        "optim.mini_batch_prompts=3",
        "algorithm.kl_coef=0.01",
        "model.gradient_checkpointing=true",
        "checkpoint.every=0",
        "steps=2",
        out=run,
    )
    _run(torchrun_cmd(config_args(cfg)))
    w = _weights(run, 2)
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in w.values())
    rows = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"actor/kl_loss"' in line]
    assert len(rows) == 2

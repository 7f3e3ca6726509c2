"""`rollout.engine=vllm` in the trainer: weights synced after every update and after a resume, the
sampler/trainer mismatch logged. Skips where vLLM cannot be imported (build the CPU environment with
scripts/vllm_cpu_env.sh and run ``.venv-vllm/bin/python -m pytest tests/trainer/test_vllm_trainer.py``)."""

from __future__ import annotations

import json
import subprocess

import pytest

from mssr.rollout import vllm_engine as ve
from mssr.trainer.trainer import RLTrainer

from .launch import config_args, torchrun_cmd, worker_env

VLLM_OK, VLLM_WHY = ve.vllm_available()
pytestmark = pytest.mark.skipif(
    not VLLM_OK, reason=f"vLLM cannot be imported here ({VLLM_WHY}); see scripts/vllm_cpu_env.sh"
)


def _rows(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_vllm_engine_trains_syncs_and_resumes(make_config, tmp_path):
    run = tmp_path / "vllm"
    common = ("rollout.engine=vllm", "checkpoint.every=2", "algorithm.kl_coef=0.01")
    RLTrainer(make_config("steps=2", *common, out=run)).train()
    RLTrainer(make_config("steps=3", *common, out=run)).train()  # resumes from step 2: the engine is synced
    rows = [r for r in _rows(run) if r["step"] > 0]
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        # the engine sampled from the weights the trainer scores with (lr 1e-3 moves them: a stale engine
        # differs by ~1e-1 at the next step)
        assert r["rollout/logprob_diff_max"] < 1e-5, r
        assert r["timing_s/sync"] > 0


def test_vllm_logprobs_as_old_logprobs_and_truncated_is(make_config, tmp_path):
    """``rollout.old_logprobs=sampler`` trains on vLLM's log-probs (no teacher-forced pass, so no mismatch metric);
    ``rollout.tis_cap`` keeps the trainer's and weights tokens by min(π_trainer/π_vLLM, C) — 1 within the fp32
    mismatch here (the weights' effect is checked with a known offset in tests/trainer/test_old_logprobs.py)."""
    common = ("rollout.engine=vllm", "steps=2")
    one_update = (
        "optim.mini_batch_prompts=8"  # all 8 rows in one update: the PPO ratio is 1 up to the mismatch
    )
    RLTrainer(make_config(*common, one_update, "rollout.old_logprobs=sampler", out=tmp_path / "s")).train()
    for r in [r for r in _rows(tmp_path / "s") if r["step"] > 0]:
        assert "rollout/logprob_diff_max" not in r and r["timing_s/sync"] > 0
        assert abs(r["actor/ppo_kl"]) < 1e-5, r  # ℓ_old = vLLM's ℓ, which equals the trainer's to ~1e-6
    RLTrainer(make_config(*common, "rollout.tis_cap=2", out=tmp_path / "t")).train()
    for r in [r for r in _rows(tmp_path / "t") if r["step"] > 0]:
        assert r["rollout/tis_weight_mean"] == pytest.approx(1.0, abs=1e-5), r
        assert r["rollout/tis_capped_frac"] == 0.0
        assert r["rollout/logprob_diff_max"] < 1e-5


def test_vllm_engine_per_rank_under_torchrun_fsdp(make_config, tmp_path):
    """2 ranks (gloo), FSDP2: each rank runs its own in-process vLLM engine on its share of the prompts; after
    every update the sharded weights are gathered tensor by tensor into both engines (a stale engine differs by
    ~1e-1 at step 2; the logged mismatch is the max over ranks), and the run exits cleanly (the engines shut
    down before the process group is destroyed: no traceback at exit)."""
    run = tmp_path / "fsdp"
    cfg = make_config("rollout.engine=vllm", "steps=2", "parallel.strategy=fsdp", out=run)
    proc = subprocess.run(
        torchrun_cmd(config_args(cfg)), env=worker_env(), capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rows = [r for r in _rows(run) if r["step"] > 0]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert r["rollout/logprob_diff_max"] < 1e-5, r
        assert r["timing_s/sync"] > 0

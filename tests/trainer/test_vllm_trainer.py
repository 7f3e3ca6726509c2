"""`rollout.engine=vllm` in the trainer: weights synced after every update and after a resume, the
sampler/trainer mismatch logged. Skips where vLLM cannot be imported (build the CPU environment with
scripts/vllm_cpu_env.sh and run ``.venv-vllm/bin/python -m pytest tests/trainer/test_vllm_trainer.py``)."""

from __future__ import annotations

import json

import pytest

from mssr.rollout import vllm_engine as ve
from mssr.trainer.trainer import RLTrainer

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

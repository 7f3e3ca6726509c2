"""Trainer test fixtures: a fast config over the session-wide tiny policy and dataset (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mssr.config import load_config
from mssr.trainer.config import TrainConfig

HERE = Path(__file__).resolve().parent
TEST_REWARD = f"{HERE / 'plugin_rewards.py'}:length_parity"


@pytest.fixture
def make_config(tiny_policy_dir, tiny_data_dir, tmp_path):
    """A fast config: tiny random policy, 8 rollouts/step, 8 new tokens, a reward with signal."""

    def _make(*overrides: str, out: Path | None = None) -> TrainConfig:
        base = [
            f"model.path={tiny_policy_dir}",
            f"data.train={tiny_data_dir}",
            f"output_dir={out or tmp_path / 'run'}",
            f"reward.spec={TEST_REWARD}",
            "steps=2",
            "device=cpu",
            "rollout.rollouts_per_step=8",
            "rollout.max_new_tokens=8",
            "rollout.gen_batch_size=8",
            "optim.mini_batch_prompts=4",
            "optim.micro_batch_size=4",
            "optim.lr=1e-3",
            "val.every=0",
            "val.at_start=false",
            "checkpoint.every=0",
            "logging.progress=false",
            "logging.tensorboard=false",
            "logging.plot=false",
        ]
        return load_config(TrainConfig, None, [*base, *overrides])

    return _make

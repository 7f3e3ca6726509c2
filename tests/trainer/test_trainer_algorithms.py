"""Every algorithm trains end to end on the tiny preset; degenerate settings are refused."""

from __future__ import annotations

import pytest
import torch

from mssr.algos import ALGORITHMS
from mssr.config import ConfigError, load_config
from mssr.trainer.config import TrainConfig
from mssr.trainer.trainer import RLTrainer


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_every_algorithm_runs_two_steps_and_changes_every_parameter(make_config, name):
    group = ALGORITHMS.get(name).advantage in ("grpo", "rloo")
    cfg = make_config(
        f"algorithm.name={name}",
        *(["algorithm.rollouts_per_prompt=4"] if group else []),
        "optim.weight_decay=0.0",  # so that parameters change through gradients only
    )
    trainer = RLTrainer(cfg)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    summary = trainer.train()
    assert summary["steps"] == 2 and summary["rollouts"] == 16
    unchanged = [
        n for n, p in trainer.model.named_parameters() if p.requires_grad and torch.equal(p, before[n])
    ]
    assert not unchanged, f"{name}: parameters unchanged after 2 steps: {unchanged[:5]}"
    rows = [r for r in (trainer.run_dir / "metrics.jsonl").read_text().splitlines() if r]
    assert len(rows) >= 2


def test_group_method_with_one_rollout_per_prompt_is_refused():
    with pytest.raises(ConfigError, match="needs rollouts_per_prompt >= 2"):
        load_config(TrainConfig, None, ["algorithm.name=grpo", "algorithm.rollouts_per_prompt=1"])
    with pytest.raises(ConfigError, match="multiple of"):
        load_config(TrainConfig, None, ["algorithm.name=grpo", "rollout.rollouts_per_step=12"])


def test_unknown_keys_and_bad_values_name_the_key():
    with pytest.raises(ConfigError, match=r"algorithm\.nme"):
        load_config(TrainConfig, None, ["algorithm.nme=grpo"])
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        load_config(TrainConfig, None, ["optim.lr=fast"])
    with pytest.raises(ConfigError, match="unknown 'ppo'"):
        load_config(TrainConfig, None, ["algorithm.name=ppo"])

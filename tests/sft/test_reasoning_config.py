"""The reasoning-world configs (docs/models.md "SFT on the reasoning world") load, validate and agree."""

from __future__ import annotations

from pathlib import Path

from mssr.config import load_config
from mssr.sft import SFTConfig, load_sft_config

REPO = Path(__file__).resolve().parents[2]


def test_reasoning_sft_and_rl_configs_agree():
    sft = load_sft_config(REPO / "configs/cpu/reasoning_sft.yaml")
    assert sorted(sft.data["families"]) == ["arithmetic", "bars", "counting", "geometry"]
    assert sft.cache_key() != SFTConfig().cache_key()  # the default job's base is untouched

    from mssr.trainer.config import TrainConfig

    rl = load_config(TrainConfig, REPO / "configs/cpu/reasoning.yaml")
    rl.validate()
    assert rl.model.path == f"{sft.out}/policy"  # RL starts from the base `mssr sft` wrote
    assert rl.data.instruction == sft.instruction  # same prompt wording as the base was trained on
    for key in ("families", "difficulty", "mc_fraction"):
        assert rl.data.builtin[key] == sft.data[key]
    assert sft.data["seed"] != 0  # the RL items (seed 0) are not the SFT items


def test_reasoning_collapse_config_is_the_learning_config_at_the_collapse_study_scale():
    """configs/cpu/reasoning_collapse.yaml (the collapse study's base, docs/results/reasoning/collapse-grid.md)
    differs from configs/cpu/reasoning.yaml only in scale, and resolves to the settings the study ran with."""
    from dataclasses import asdict

    from mssr.trainer.config import TrainConfig

    rl = asdict(load_config(TrainConfig, REPO / "configs/cpu/reasoning.yaml"))
    small = asdict(load_config(TrainConfig, REPO / "configs/cpu/reasoning_collapse.yaml"))
    assert rl["rollout"]["rollouts_per_step"] == 256 and rl["optim"]["mini_batch_prompts"] == 64
    assert (rl["data"]["builtin"]["n_train"], rl["data"]["builtin"]["n_val"], rl["steps"]) == (8000, 500, 200)
    # the study's settings: 64 rollouts in mini-batches of 16 prompts, 1,000 / 200 items, 100 steps, val every 10
    assert small["rollout"]["rollouts_per_step"] == 64 and small["optim"]["mini_batch_prompts"] == 16
    assert (small["data"]["builtin"]["n_train"], small["data"]["builtin"]["n_val"]) == (1000, 200)
    assert (small["steps"], small["val"]["every"], small["optim"]["lr"]) == (100, 10, 1e-4)
    differ = {
        f"{section}.{k}"
        for section, v in rl.items()
        if isinstance(v, dict)
        for k in v
        if v[k] != small[section][k]
    } | {k for k, v in rl.items() if not isinstance(v, dict) and v != small[k]}
    assert differ == {
        "steps",
        "data.builtin",
        "rollout.rollouts_per_step",
        "optim.mini_batch_prompts",
        "val.every",
    }


def test_reasoning_drift_configs_are_the_learning_configs_from_an_earlier_base():
    """configs/cpu/reasoning_sft_early.yaml is the reasoning base's own run stopped part-way (nothing else
    differs), and configs/cpu/reasoning_drift.yaml starts from it at the slow-drift study's step."""
    from dataclasses import asdict

    from mssr.trainer.config import TrainConfig

    full = load_sft_config(REPO / "configs/cpu/reasoning_sft.yaml")
    early = load_sft_config(REPO / "configs/cpu/reasoning_sft_early.yaml")
    assert early.stop_step == 500 < early.max_steps == full.max_steps
    differ = {k for k, v in asdict(early).items() if asdict(full)[k] != v}
    assert differ == {"stop_step", "out"}

    drift = load_config(TrainConfig, REPO / "configs/cpu/reasoning_drift.yaml")
    drift.validate()
    assert drift.model.path == f"{early.out}/policy"
    assert drift.optim.lr == 1e-4 and drift.rollout.rollouts_per_step == 128
    assert drift.optim.mini_batch_prompts == 32  # responses per mini-batch for a single-rollout arm
    assert drift.prompts_per_step // drift.optim.mini_batch_prompts == 4  # 4 updates per step, single rollout
    assert drift.steps * drift.prompts_per_step // drift.data.builtin["n_train"] == 32  # draws per item

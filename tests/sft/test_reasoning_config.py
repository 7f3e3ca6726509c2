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

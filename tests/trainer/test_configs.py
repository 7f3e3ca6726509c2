"""Every shipped config loads and validates; the CPU default equals the dataclass defaults' job."""

from pathlib import Path

import pytest

from mssr.config import load_config
from mssr.sft.config import SFTConfig
from mssr.trainer.config import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml"))


def test_configs_exist():
    names = {p.relative_to(p.parents[1]).as_posix() for p in CONFIGS}
    for alg in ("mssr", "mvsr", "grpo", "rloo", "reinforce_pp", "mvsr_entropy_loss", "mvsr_crossmodal"):
        assert f"cpu/{alg}.yaml" in names
    assert {
        "paper/qwen2_5_vl_7b_mssr.yaml",
        "paper/qwen2_5_vl_3b_mssr.yaml",
        "paper/qwen2_5_vl_7b_grpo.yaml",
    } <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(p.parents[1]).as_posix())
def test_config_loads_and_validates(path):
    if "_sft" in path.stem:  # `mssr sft --config` files (the reasoning world's warm start)
        load_config(SFTConfig, path)
        return
    cfg = load_config(TrainConfig, path)
    assert cfg.rollout.rollouts_per_step % cfg.algorithm.spec().rollouts_per_prompt == 0


def test_paper_settings_match_the_method_doc():
    root = CONFIGS[0].parents[1]
    mssr = load_config(TrainConfig, root / "paper/qwen2_5_vl_7b_mssr.yaml")
    grpo = load_config(TrainConfig, root / "paper/qwen2_5_vl_7b_grpo.yaml")
    assert mssr.prompts_per_step == 2048 and grpo.prompts_per_step == 256
    assert mssr.optim.lr == 1e-6 and mssr.optim.mini_batch_prompts == 128
    assert mssr.prompts_per_step // mssr.optim.mini_batch_prompts == 16
    assert grpo.prompts_per_step // grpo.optim.mini_batch_prompts == 2
    assert mssr.optim.grad_clip == 0.5 and grpo.optim.grad_clip == 1.0
    a = mssr.algorithm
    assert (
        a.shaping.alpha,
        a.shaping.cap,
        a.rho.kl_target,
        a.rho.kl_window,
        a.loss.clip_low,
        a.loss.clip_high,
        a.loss.dual_clip,
    ) == (
        0.4,
        2.0,
        0.01,
        10,
        0.2,
        0.3,
        3.0,
    )
    assert mssr.algorithm.spec().kl_coef == 0.01 and mssr.algorithm.spec().shaping


def test_cpu_default_is_the_dataclass_default_job():
    root = CONFIGS[0].parents[1]
    file_cfg = load_config(TrainConfig, root / "cpu/mssr.yaml")
    default = load_config(
        TrainConfig
    )  # the dataclass defaults, loaded (nulls resolved) as `mssr train` loads them
    for section in ("algorithm", "rollout", "optim", "model"):
        assert getattr(file_cfg, section) == getattr(default, section), section

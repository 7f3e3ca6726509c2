"""One source of truth per value: a null that stands for the algorithm's value is filled in when the config is
loaded (docs/method.md §5: grad clip 0.5 single rollout, 1.0 group; KL weight 0.01; GRPO 8 rollouts per prompt)."""

from __future__ import annotations

from types import SimpleNamespace

import yaml

from mssr.config import dump_yaml, load_config, validated
from mssr.trainer.config import PRESET_FIELDS, TrainConfig


def test_a_loaded_config_holds_the_algorithms_values():
    mssr = load_config(TrainConfig)
    a = mssr.algorithm
    assert (a.rollouts_per_prompt, a.advantage, a.kl_coef, a.entropy_coef, a.crossmodal_coef) == (
        1,
        "single_rollout",
        0.01,
        0.0,
        0.0,
    )
    assert a.shaping.enabled is True and mssr.optim.grad_clip == 0.5
    grpo = load_config(TrainConfig, None, ["algorithm.name=grpo", "rollout.rollouts_per_step=64"])
    g = grpo.algorithm
    assert (g.rollouts_per_prompt, g.advantage, g.shaping.enabled, grpo.optim.grad_clip) == (
        8,
        "grpo",
        False,
        1.0,
    )
    mvsr_ent = load_config(TrainConfig, None, ["algorithm.name=mvsr_entropy_loss"]).algorithm
    assert mvsr_ent.entropy_coef == 0.01 and mvsr_ent.shaping.enabled is False
    # a value given is kept, and the algorithm's spec agrees with the resolved fields
    given = load_config(TrainConfig, None, ["algorithm.kl_coef=0", "optim.grad_clip=0.7"])
    assert given.algorithm.kl_coef == 0.0 and given.optim.grad_clip == 0.7
    assert given.algorithm.spec().kl_coef == 0.0
    assert all(getattr(mssr.algorithm.spec(), k) == getattr(a, k) for k in PRESET_FIELDS)


def test_the_saved_config_records_the_values_and_reloads_unchanged(tmp_path):
    cfg = load_config(TrainConfig, None, ["algorithm.name=grpo"])
    saved = yaml.safe_load(dump_yaml(cfg))
    assert saved["algorithm"]["kl_coef"] == 0.01 and saved["optim"]["grad_clip"] == 1.0
    (tmp_path / "c.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
    assert load_config(TrainConfig, tmp_path / "c.yaml") == cfg


def test_validated_resolves_a_python_built_config_without_touching_it():
    raw = TrainConfig()
    out = validated(raw)
    assert raw.algorithm.kl_coef is None and raw.optim.grad_clip is None  # the caller's object is unchanged
    assert out.algorithm.kl_coef == 0.01 and out.optim.grad_clip == 0.5
    assert validated(out) == out  # idempotent


def _older_config_yaml(cfg: TrainConfig) -> str:
    """The config.yaml an older version wrote: the preset fields and grad_clip left null."""
    data = yaml.safe_load(dump_yaml(cfg))
    for k in PRESET_FIELDS:
        data["algorithm"][k] = None
    data["algorithm"]["shaping"]["enabled"] = None
    data["optim"]["grad_clip"] = None
    return yaml.safe_dump(data, sort_keys=False)


def test_resuming_a_run_saved_with_preset_nulls_sees_no_change(tmp_path):
    from mssr.trainer.rundir import resume_config_diff

    cfg = load_config(TrainConfig)
    path = tmp_path / "config.yaml"
    path.write_text(_older_config_yaml(cfg), encoding="utf-8")
    assert resume_config_diff(path, cfg) == []
    changed = load_config(TrainConfig, None, ["algorithm.kl_coef=0.05"])
    assert resume_config_diff(path, changed) == ["algorithm.kl_coef: 0.01 -> 0.05"]


def test_compare_continues_a_run_yaml_saved_with_preset_nulls(tmp_path):
    import pytest

    from mssr.experiments.plan import CompareError
    from mssr.experiments.runner import RUN_YAML, _check_run_config

    cfg = load_config(TrainConfig)
    (tmp_path / RUN_YAML).write_text(_older_config_yaml(cfg), encoding="utf-8")
    _check_run_config(SimpleNamespace(id="mssr/seed0"), cfg, tmp_path)  # no CompareError
    other = load_config(TrainConfig, None, ["optim.grad_clip=1.0"])
    with pytest.raises(CompareError, match=r"optim\.grad_clip"):
        _check_run_config(SimpleNamespace(id="mssr/seed0"), other, tmp_path)

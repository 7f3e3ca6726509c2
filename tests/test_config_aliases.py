"""Renamed config fields: the old names still load (YAML, include:d files, dotted overrides, from_dict), each with
a one-line deprecation warning naming old → new; both names at once and unknown names are refused."""

import dataclasses
import json
import logging
import typing
from pathlib import Path
from types import SimpleNamespace

import pytest

from mssr.config import ConfigError, canonical, dump_yaml, from_dict, load_config
from mssr.trainer.config import AlgorithmConfig, RolloutConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def _warnings(caplog) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "mssr.config" and r.levelno == logging.WARNING
    ]


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_every_alias_names_a_real_field_and_no_field_is_also_an_alias():
    def keys(cls, prefix=""):
        for f in dataclasses.fields(cls):
            tp = typing.get_type_hints(cls)[f.name]
            yield prefix + f.name
            if dataclasses.is_dataclass(tp):
                yield from keys(tp, f"{prefix}{f.name}.")

    for cls in (AlgorithmConfig, RolloutConfig):
        fields = set(keys(cls))
        assert set(cls.ALIASES.values()) <= fields
        # an old name may be a section's own name now (rho, shaping: the old field when the value is no mapping)
        clash = set(cls.ALIASES) & fields
        assert all(cls.ALIASES[k].startswith(k + ".") for k in clash), clash
        assert "ALIASES" not in fields  # a ClassVar, not a config key


def test_old_names_in_yaml_load_into_the_new_fields_with_one_warning_each(tmp_path, caplog):
    path = _yaml(
        tmp_path / "old.yaml",
        "algorithm:\n  alpha: 0.7\n  kappa: 3.0\n  entropy_mode: full\n  rho: per_prompt\n  d_half: 0.1\n"
        "  kl_target: 0.02\n  kl_window: 4\n  spo_n0: 3\n  dual_clip_c: null\n",
    )
    with caplog.at_level(logging.WARNING, logger="mssr.config"):
        a = load_config(TrainConfig, path).algorithm
    assert (a.shaping.alpha, a.shaping.cap, a.shaping.entropy, a.rho.schedule, a.rho.d_half) == (
        0.7,
        3.0,
        "full",
        "per_prompt",
        0.1,
    )
    assert (a.rho.kl_target, a.rho.kl_window, a.tracker.spo_init_rollouts, a.loss.dual_clip) == (
        0.02,
        4,
        3,
        None,
    )
    msgs = _warnings(caplog)
    assert len(msgs) == 9
    assert any("algorithm.alpha → algorithm.shaping.alpha" in m and str(path) in m for m in msgs)
    assert all("\n" not in m for m in msgs)
    # the dump carries only the new names, and loads back without a warning
    text = dump_yaml(load_config(TrainConfig, path))
    assert "  shaping:\n    enabled: true\n    alpha: 0.7" in text and "\n  alpha:" not in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mssr.config"):
        load_config(TrainConfig, _yaml(tmp_path / "new.yaml", text))
    assert _warnings(caplog) == []


def test_old_name_as_override(caplog):
    with caplog.at_level(logging.WARNING, logger="mssr.config"):
        cfg = load_config(TrainConfig, None, ["algorithm.kappa=4", "--algorithm.dual_clip_c=2.5"])
    assert cfg.algorithm.shaping.cap == 4.0 and cfg.algorithm.loss.dual_clip == 2.5
    msgs = _warnings(caplog)
    assert len(msgs) == 2 and "algorithm.kappa → algorithm.shaping.cap" in msgs[0]


def test_override_with_old_name_replaces_the_new_name_of_the_file(tmp_path):
    path = _yaml(tmp_path / "c.yaml", "algorithm:\n  shaping:\n    alpha: 0.7\n")
    assert load_config(TrainConfig, path, ["algorithm.alpha=0.9"]).algorithm.shaping.alpha == 0.9
    old = _yaml(tmp_path / "o.yaml", "algorithm:\n  alpha: 0.7\n")
    assert load_config(TrainConfig, old, ["algorithm.shaping.alpha=0.8"]).algorithm.shaping.alpha == 0.8
    assert load_config(TrainConfig, old, ["algorithm.shaping_alpha=0.6"]).algorithm.shaping.alpha == 0.6


def test_include_with_old_names_under_a_file_with_new_names(tmp_path, caplog):
    _yaml(tmp_path / "base.yaml", "algorithm:\n  alpha: 0.7\n  kl_window: 5\n")
    top = _yaml(tmp_path / "top.yaml", "include: base.yaml\nalgorithm:\n  shaping:\n    alpha: 0.2\n")
    with caplog.at_level(logging.WARNING, logger="mssr.config"):
        a = load_config(TrainConfig, top).algorithm
    assert a.shaping.alpha == 0.2 and a.rho.kl_window == 5  # the including file wins, as with one name
    assert any("base.yaml" in m and "kl_window → algorithm.rho.kl_window" in m for m in _warnings(caplog))


def test_both_names_in_one_yaml_mapping_is_an_error(tmp_path):
    path = _yaml(tmp_path / "both.yaml", "algorithm:\n  alpha: 0.7\n  shaping:\n    alpha: 0.4\n")
    with pytest.raises(ConfigError, match=r"algorithm\.alpha and algorithm\.shaping\.alpha both given") as e:
        load_config(TrainConfig, path)
    assert str(path) in str(e.value) and "keep only algorithm.shaping.alpha" in str(e.value)
    two_old = _yaml(tmp_path / "two.yaml", "algorithm:\n  alpha: 0.7\n  shaping_alpha: 0.4\n")
    with pytest.raises(ConfigError, match=r"algorithm\.alpha and algorithm\.shaping_alpha both given"):
        load_config(TrainConfig, two_old)


@pytest.mark.parametrize(
    "overrides",
    [
        ["algorithm.rho=fixed", "algorithm.rho_schedule=per_prompt"],
        ["algorithm.rho_schedule=per_prompt", "algorithm.rho=fixed"],
    ],
)
def test_both_names_in_one_override_list_is_an_error(overrides):
    with pytest.raises(
        ConfigError, match=r"algorithm\.rho(_schedule)? and algorithm\.rho(_schedule)? both given"
    ):
        load_config(TrainConfig, None, overrides)


def test_both_names_in_from_dict_is_an_error():
    with pytest.raises(ConfigError, match=r"algorithm\.kl_target and algorithm\.rho_kl_target both given"):
        from_dict(TrainConfig, {"algorithm": {"kl_target": 0.1, "rho_kl_target": 0.2}})
    assert from_dict(TrainConfig, {"algorithm": {"kl_target": 0.1}}).algorithm.rho.kl_target == 0.1


def test_unknown_names_are_still_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key algorithm\.alpah"):
        load_config(TrainConfig, None, ["algorithm.alpah=0.3"])
    with pytest.raises(ConfigError, match=r"unknown config key algorithm\.shaping_kappa"):
        load_config(TrainConfig, _yaml(tmp_path / "u.yaml", "algorithm:\n  shaping_kappa: 2\n"))
    with pytest.raises(ConfigError, match="unknown config key alpha"):  # an alias lives in its own section
        load_config(TrainConfig, None, ["alpha=0.3"])
    with pytest.raises(ConfigError, match=r"unknown config key optim\.alpha"):
        load_config(TrainConfig, None, ["optim.alpha=0.3"])


def test_validation_messages_use_the_new_names():
    with pytest.raises(ConfigError, match=r"algorithm\.shaping\.cap must be >= 1"):
        load_config(TrainConfig, None, ["algorithm.kappa=0.5"])
    with pytest.raises(ConfigError, match=r"algorithm\.rho\.schedule: unknown 'nope'"):
        load_config(TrainConfig, None, ["algorithm.rho=nope"])
    with pytest.raises(ConfigError, match=r"algorithm\.rho\.schedule: unknown 'nope'"):
        load_config(TrainConfig, None, ["algorithm.rho.schedule=nope"])


def test_canonical_renames_nested_keys_quietly_on_request(caplog):
    with caplog.at_level(logging.WARNING, logger="mssr.config"):
        out = canonical(TrainConfig, {"steps": 3, "algorithm": {"alpha": 1.0, "name": "mssr"}}, warn=False)
    assert out == {"steps": 3, "algorithm": {"name": "mssr", "shaping": {"alpha": 1.0}}}
    assert _warnings(caplog) == []


def test_resume_compares_a_saved_config_written_with_old_names(tmp_path):
    from mssr.trainer.rundir import resume_config_diff

    cfg = load_config(TrainConfig)
    # a config.yaml as an older version wrote it: the method's settings flat, under their oldest names
    saved = (
        dump_yaml(cfg).split("  tracker:\n")[0]
        + "  alpha: 0.4\n  kappa: 2.0\n  entropy_mode: sampled\n  rho: kl_window\n  kl_window: 10\n"
        + "  clip_low: 0.2\n  loss_agg_mode: token-mean\n"
        + "  grpo_eps: 1.0e-06\n"
    )
    path = _yaml(tmp_path / "config.yaml", saved)
    assert resume_config_diff(path, cfg) == []
    changed = load_config(TrainConfig, None, ["algorithm.shaping.alpha=0.9"])
    assert resume_config_diff(path, changed) == ["algorithm.shaping.alpha: 0.4 -> 0.9"]


def test_compare_accepts_an_existing_run_yaml_with_old_names(tmp_path):
    from mssr.experiments.runner import RUN_YAML, _check_run_config

    cfg = load_config(TrainConfig)
    (tmp_path / RUN_YAML).write_text(dump_yaml(cfg).replace("  shaping_entropy:", "  entropy_mode:"), "utf-8")
    _check_run_config(SimpleNamespace(id="mssr/seed0"), cfg, tmp_path)  # no CompareError


def test_committed_comparison_variants_with_old_names_still_plan(tmp_path):
    """docs/results/miniature/compare.json recorded ``--variants mssr_full:algorithm.entropy_mode=full``."""
    from mssr.experiments import parse_variants, plan_compare

    meta = json.loads((ROOT / "docs/results/miniature/compare.json").read_text(encoding="utf-8"))
    specs = [
        i["argv"][i["argv"].index("--variants") + 1] for i in meta["invocations"] if "--variants" in i["argv"]
    ]
    spec = next(s for s in specs if "entropy_mode" in s)
    plan = plan_compare(
        base=str(ROOT / meta["base"]),
        algorithms=("mssr",),
        seeds=(0,),
        variants=parse_variants(spec),
        out=tmp_path / "cmp",
    )
    full = [plan.run_config(r) for r in plan.runs if r.variant == "mssr_full"]
    assert full and full[0].algorithm.shaping.entropy == "full"


# ------------------------------------------------------------------ fields that moved into a section
def test_moved_fields_load_from_yaml_and_overrides_into_their_section(tmp_path, caplog):
    path = _yaml(
        tmp_path / "old.yaml", "rollout:\n  engine: vllm\n  vllm_sleep_level: 2\n  vllm_max_model_len: 512\n"
    )
    with caplog.at_level(logging.WARNING, logger="mssr.config"):
        r = load_config(TrainConfig, path, ["rollout.vllm_gpu_memory_utilization=0.6"]).rollout
    assert (r.vllm.sleep_level, r.vllm.max_model_len, r.vllm.gpu_memory_utilization) == (2, 512, 0.6)
    said = _warnings(caplog)
    assert any("rollout.vllm_sleep_level → rollout.vllm.sleep_level" in w for w in said)
    assert any("rollout.vllm_gpu_memory_utilization → rollout.vllm.gpu_memory_utilization" in w for w in said)
    # the new spelling, in YAML and as an override: no warning
    caplog.clear()
    new = _yaml(tmp_path / "new.yaml", "rollout:\n  engine: vllm\n  vllm:\n    sleep_level: 1\n")
    with caplog.at_level(logging.WARNING, logger="mssr.config"):
        r = load_config(TrainConfig, new, ["rollout.vllm.max_model_len=256"]).rollout
    assert (r.vllm.sleep_level, r.vllm.max_model_len) == (1, 256) and not _warnings(caplog)


def test_a_moved_field_given_under_both_names_is_refused(tmp_path):
    both = _yaml(tmp_path / "both.yaml", "rollout:\n  vllm_sleep_level: 1\n  vllm:\n    sleep_level: 2\n")
    with pytest.raises(ConfigError, match=r"vllm_sleep_level and rollout\.vllm\.sleep_level both given"):
        load_config(TrainConfig, both)
    with pytest.raises(ConfigError, match="both given"):
        load_config(TrainConfig, None, ["rollout.vllm_sleep_level=1", "rollout.vllm.sleep_level=2"])


def test_a_run_saved_with_the_old_names_resumes_under_the_new_ones(tmp_path):
    """resume_config_diff reads a checkpoint's config.yaml through the aliases: the old spelling is no change."""
    from mssr.trainer.rundir import resume_config_diff

    saved = _yaml(tmp_path / "config.yaml", "rollout:\n  engine: vllm\n  vllm_gpu_memory_utilization: 0.5\n")
    same = load_config(TrainConfig, None, ["rollout.engine=vllm", "rollout.vllm.gpu_memory_utilization=0.5"])
    other = load_config(TrainConfig, None, ["rollout.engine=vllm", "rollout.vllm.gpu_memory_utilization=0.6"])
    assert resume_config_diff(saved, same) == []
    assert resume_config_diff(saved, other) == ["rollout.vllm.gpu_memory_utilization: 0.5 -> 0.6"]


def test_estimator_and_sampler_settings_moved_into_sections(tmp_path, caplog):
    """grpo_* / scale_by_std → algorithm.group, adv_* → algorithm.single_rollout, sampler / priority_eps →
    algorithm.sampler; ``sampler: prioritized`` (not a mapping) is the old field."""
    old = _yaml(
        tmp_path / "old.yaml",
        "algorithm:\n  name: grpo\n  grpo_eps: 0.001\n  grpo_unbiased: false\n  scale_by_std: false\n"
        "  sampler: prioritized\n  priority_eps: 0.2\n",
    )
    with caplog.at_level(logging.WARNING, logger="mssr.config"):
        a = load_config(TrainConfig, old).algorithm
    assert (a.group.eps, a.group.unbiased, a.group.scale_by_std) == (0.001, False, False)
    assert (a.sampler.kind, a.sampler.priority_eps) == ("prioritized", 0.2)
    assert a.estimator_kwargs() == {"eps": 0.001, "unbiased": False, "scale_by_std": False}
    assert len(_warnings(caplog)) == 5
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mssr.config"):
        s = load_config(TrainConfig, None, ["algorithm.adv_scale=signal", "algorithm.adv_zero_uniform=true"])
    assert (s.algorithm.single_rollout.scale, s.algorithm.single_rollout.zero_uniform) == ("signal", True)
    assert s.algorithm.estimator_kwargs() == {"scale": "signal", "zero_uniform": True}
    assert any("algorithm.adv_scale → algorithm.single_rollout.scale" in m for m in _warnings(caplog))
    # the paper's single-rollout advantage passes no variant arguments; the new spelling warns nothing
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mssr.config"):
        p = load_config(TrainConfig, None, ["algorithm.sampler.kind=prioritized"]).algorithm
    assert p.estimator_kwargs() == {} and p.sampler.kind == "prioritized" and not _warnings(caplog)
    with pytest.raises(ConfigError, match="both given"):
        load_config(TrainConfig, None, ["algorithm.sampler=prioritized", "algorithm.sampler.kind=uniform"])
    with pytest.raises(ConfigError, match=r"algorithm\.sampler\.priority_eps"):
        load_config(TrainConfig, None, ["algorithm.sampler.priority_eps=-1"])

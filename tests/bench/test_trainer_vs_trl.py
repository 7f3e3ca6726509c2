"""bench/trainer_vs_trl.py: its pure helpers, the configs it gives each trainer, and one ``--quick`` run.

The quick run checks what the benchmark claims about itself: every arm measured the same rollouts per step,
TRL made exactly one generation per optimizer step with the arguments it was given, each mssr step made one
update, prompts are token-identical under both chat templates, and the printed numbers follow from the raw
step times (seconds per 1,000 rollouts, ours/TRL ratio).
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "trainer_vs_trl.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("trainer_vs_trl", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def test_per_1k_and_ratio(bench):
    assert bench.per_1k(6.4, 64) == pytest.approx(100.0)
    assert bench.per_1k(0.5, 4) == pytest.approx(125.0)
    ours = bench.ArmResult("a", "a", 64, 8, step_s=[3.0, 5.0, 4.0])
    peer = bench.ArmResult("b", "b", 64, 8, step_s=[8.0, 8.0, 9.0])
    # medians 4 and 8 s/step -> 62.5 and 125 s per 1,000 rollouts
    assert ours.summary()["per_1k_median"] == pytest.approx(62.5)
    assert bench.ratio(ours, peer) == pytest.approx(0.5)
    assert bench.ratio(ours, peer, "per_1k_mean") == pytest.approx(4.0 / (25 / 3))
    failed = bench.ArmResult("c", "c", 64, 8, error="ValueError: no")
    assert bench.ratio(ours, failed) is None
    assert "FAILED: ValueError: no" in bench.format_table({"trl_grpo": failed})


def test_rotation_visits_every_position(bench):
    names = ["a", "b", "c"]
    orders = [bench.rotation(names, k) for k in range(3)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    for pos in range(3):
        assert {o[pos] for o in orders} == set(names)
    assert bench.rotation([], 5) == []


@pytest.mark.parametrize(("rollouts", "micro"), [(64, 32), (64, 64), (16, 4), (4, 4)])
def test_trl_layout_is_one_optimizer_step_per_generation(bench, rollouts, micro):
    lay = bench.trl_batch_layout(rollouts, micro)
    # completions generated at once, and consumed by one optimizer step, are both the rollout batch
    assert lay["per_device_train_batch_size"] * lay["steps_per_generation"] == rollouts
    assert lay["per_device_train_batch_size"] * lay["gradient_accumulation_steps"] == rollouts
    with pytest.raises(ValueError):
        bench.trl_batch_layout(rollouts, micro + 1 if rollouts % (micro + 1) else micro + 3)


def test_settings_validation(bench):
    with pytest.raises(ValueError, match="group"):
        bench.Settings(group=0).validate()
    with pytest.raises(ValueError, match="micro-batch"):
        bench.Settings(prompts=3, group=2, micro_batch=4).validate()
    with pytest.raises(ValueError, match="unknown arms"):
        bench.Settings(arms=("nope",)).validate()
    assert bench.Settings(prompts=8, group=8).micro == 32
    assert bench.Settings(prompts=2, group=2).micro == 4


def test_mssr_overrides_match_the_trl_side(bench, tmp_path):
    from mssr.config import load_config
    from mssr.trainer.config import TrainConfig

    s = bench.Settings(prompts=4, group=4, max_new_tokens=16, steps=2, warmup=1)
    cfgs = {
        arm: load_config(TrainConfig, None, bench.mssr_overrides(arm, s, tmp_path / "p", tmp_path / arm))
        for arm in ("mssr_grpo", "mssr_grpo_kl", "mssr_mssr")
    }
    for cfg in cfgs.values():
        assert cfg.rollout.rollouts_per_step == 16
        assert cfg.rollout.max_new_tokens == 16
        assert (cfg.rollout.temperature, cfg.rollout.top_p) == (1.0, 1.0)
        assert cfg.optim.updates_per_step == 1
        assert cfg.optim.micro_batch_size == s.micro
        assert cfg.steps == 3
        assert cfg.val.every == 0 and not cfg.val.at_start and cfg.checkpoint.every == 0
    g = cfgs["mssr_grpo"]
    assert g.prompts_per_step == 4 and g.algorithm.spec().rollouts_per_prompt == 4
    assert g.algorithm.spec().kl_coef == 0
    assert cfgs["mssr_grpo_kl"].algorithm.spec().kl_coef > 0
    assert cfgs["mssr_mssr"].prompts_per_step == 16


def test_quick_run_end_to_end(tmp_path):
    pytest.importorskip("trl")
    pytest.importorskip("datasets")
    out = tmp_path / "bench.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out), "--workdir", str(tmp_path / "wd")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    s = res["settings"]
    rollouts = s["prompts"] * s["group"]
    assert res["prompt"]["identical_ids"] is True
    assert res["prompt"]["mssr_tokens"] == res["prompt"]["trl_tokens"]
    arms = res["arms"]
    assert set(arms) == {"trl_grpo", "mssr_grpo", "mssr_grpo_kl", "mssr_mssr"}
    for name, arm in arms.items():
        assert arm["rollouts_per_step"] == rollouts, name
        if name == "trl_grpo" and arm["error"]:
            # allowed only with the reason printed
            assert f"no ours/TRL ratio: {arm['label']}: {arm['error']}" in proc.stdout
            continue
        assert len(arm["step_s"]) == s["steps"] and len(arm["warmup_s"]) == s["warmup"], name
        assert len(arm["cpu_s"]) == s["steps"] and all(c > 0 for c in arm["cpu_s"]), name
        assert arm["cpu_per_1k_median"] == pytest.approx(1000 * statistics.median(arm["cpu_s"]) / rollouts)
        assert arm["per_1k_median"] == pytest.approx(1000 * statistics.median(arm["step_s"]) / rollouts), name
        assert arm["updates_per_step"] == [1.0] * s["steps"], name
        # a random policy almost never ends early: lengths are comparable across arms
        assert 1 <= arm["response_length_mean"] <= s["max_new_tokens"], name
        # the stages are parts of the step
        assert sum(arm["stage_s_mean"].values()) <= arm["step_s_mean"] * 1.05 + 1e-3, name
    assert arms["mssr_mssr"]["prompts_per_step"] == rollouts
    assert arms["mssr_grpo"]["prompts_per_step"] == s["prompts"]
    assert arms["mssr_mssr"]["notes"]["tracker_init_rollouts"] == res["prompt"]["pool"]
    trl = arms["trl_grpo"]
    if not trl["error"]:
        a = trl["notes"]["trl_args"]
        assert a["generation_batch_size"] == rollouts
        assert a["steps_per_generation"] == a["gradient_accumulation_steps"]
        assert (a["beta"], a["top_k"], a["gradient_checkpointing"], a["bf16"]) == (0.0, 0, False, False)
        # exactly one generation per optimizer step, every step
        assert trl["notes"]["generate_calls_per_step"] == [1] * (s["steps"] + s["warmup"])
        expected = arms["mssr_grpo"]["per_1k_median"] / trl["per_1k_median"]
        assert res["ratio_mssr_grpo_over_trl"] == pytest.approx(expected)
        cpu = arms["mssr_grpo"]["cpu_per_1k_median"] / trl["cpu_per_1k_median"]
        assert res["ratio_mssr_grpo_over_trl_cpu"] == pytest.approx(cpu)
        assert f"{expected:.2f}" in proc.stdout
    assert res["ratio_mssr_over_grpo"] == pytest.approx(
        arms["mssr_mssr"]["per_1k_median"] / arms["mssr_grpo_kl"]["per_1k_median"]
    )


def test_levers_measure_equivalent_passes(bench, tmp_path):
    """The savings in docs/benchmarks.md rest on equivalences; check them at quick size."""
    s = bench.Settings(**{**bench.QUICK, "group": 2, "prompts": 2, "max_new_tokens": 6})
    assets = bench.build_assets(s, tmp_path, check_trl=False)
    r = bench.measure_levers(s, assets, repeats=1)
    # (1) the sampler's log-probs are the teacher-forced old log-probs (fp32 CPU)
    assert r["sampler_vs_teacher_forced_max_abs"] < 1e-5
    # (2)/(3) running each prompt once per group gives the same log-probs and gradients as every row
    assert r["shared_vs_rows_logprob_max_abs"] < 1e-5
    assert r["shared_grad_max_rel_diff"] < 1e-4
    # the step figures are sums of the measured passes
    assert r["step_none_cpu"] == pytest.approx(
        r["gen_rows_cpu"] + r["old_logprob_rows_cpu"] + r["fwd_bwd_rows_cpu"]
    )
    assert r["step_1_2_3_cpu"] == pytest.approx(r["gen_shared_cpu"] + r["fwd_bwd_shared_cpu"])
    text = bench.format_levers(r, s)
    assert f"{r['step_1_2_3_cpu'] / r['step_none_cpu']:.2f} x" in text


@pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers renames gradient_checkpointing
def test_a_configuration_an_arm_refuses_is_reported_with_its_reason(bench, tmp_path):
    """One rollout per prompt: TRL and mssr's grpo both refuse, each with its own message; mssr runs."""
    pytest.importorskip("trl")
    pytest.importorskip("datasets")
    s = bench.Settings(**{**bench.QUICK, "group": 1, "arms": ("trl_grpo", "mssr_grpo", "mssr_mssr")})
    lines: list[str] = []
    out = bench.run_benchmark(s, tmp_path, log=lines.append)
    arms = out["arms"]
    assert "at least 2 generations per prompt" in arms["trl_grpo"]["error"]  # TRL's own ValueError
    assert "rollouts_per_prompt >= 2" in arms["mssr_grpo"]["error"]  # mssr's ConfigError
    assert not arms["trl_grpo"]["step_s"] and not arms["mssr_grpo"]["step_s"]
    assert any(arms["trl_grpo"]["error"] in line for line in lines)
    assert arms["mssr_mssr"]["error"] is None and len(arms["mssr_mssr"]["step_s"]) == s.steps
    assert out.get("ratio_mssr_grpo_over_trl") is None
    table = bench.format_table(out["_results"])
    assert f"FAILED: {arms['trl_grpo']['error']}" in table

"""The tracker's other settings run in the trainer: SPO per-prompt ρ, SPO initialisation, prioritised sampling."""

from __future__ import annotations

import json

from mssr.trainer.trainer import RLTrainer


def _rows(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def test_per_prompt_rho_uses_the_stored_response_drift(make_config, tmp_path):
    # 8 training prompts, 8 per step: every prompt is revisited each step, so D(x) exists from step 2 on
    cfg = make_config("algorithm.rho=per_prompt", "data.max_train_items=8", "steps=3", out=tmp_path / "p")
    trainer = RLTrainer(cfg)
    trainer.train()
    rows = {r["step"]: r for r in _rows(tmp_path / "p")}
    assert rows[1]["mssr/rho"] == 0.96  # first visits: D = 0 -> ρ_max
    assert rows[2]["mssr/rho"] < 0.96  # the policy moved (lr 1e-3): D > 0 shortens the memory
    assert len(trainer.response_store) == 8


def test_spo_initialisation_and_prioritised_sampling(make_config, tmp_path):
    cfg = make_config(
        "algorithm.tracker_init=spo",
        "algorithm.spo_n0=2",
        "algorithm.sampler=prioritized",
        "steps=2",
        out=tmp_path / "s",
    )
    trainer = RLTrainer(cfg)
    trainer.initialize_tracker()
    n = len(trainer.train_prompts)
    assert trainer.counters["init_rollouts"] == 2 * n and len(trainer.tracker) == n
    # SPO: α0 = N0 (s + 0.5)/(n0 + 1), β0 = N0 (n0 − s + 0.5)/(n0 + 1) with s ∈ {0, 1, 2}, N0 = 8
    for key in trainer.tracker._alpha:
        a, b = trainer.tracker.params(key)
        s = round(a * 3 / 8 - 0.5)
        assert s in (0, 1, 2)
        assert abs(a - 8 * (s + 0.5) / 3) < 1e-12 and abs(b - 8 * (2 - s + 0.5) / 3) < 1e-12
    summary = trainer.train()  # continues without initialising twice
    assert summary["init_rollouts"] == 2 * n and summary["steps"] == 2
    assert trainer.sampler.mode == "prioritized"


def test_reused_sampler_logprobs_match_a_teacher_forced_pass(make_config, tmp_path):
    from mssr.rollout.logprobs import compute_logprobs

    trainer = RLTrainer(make_config(out=tmp_path / "lp"))
    d = trainer.rollout(1, trainer.sample_prompts(1))
    trainer.compute_old_logprobs(d)
    forward = compute_logprobs(trainer.model, d.batch).logprobs
    mask = d.batch.response_mask > 0
    assert d.batch.rollout_logprobs is not None
    assert float((d.old_logprobs - forward)[mask].abs().max()) < 1e-4

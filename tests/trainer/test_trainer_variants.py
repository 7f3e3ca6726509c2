"""The tracker's other settings run in the trainer: SPO per-prompt ρ, SPO initialisation, prioritised sampling."""

from __future__ import annotations

import json

import pytest

from mssr.trainer import step as step_mod
from mssr.trainer.stages import advantages as adv
from mssr.trainer.stages import generation as gen
from mssr.trainer.stages import logprobs as lps
from mssr.trainer.stages import update as upd
from mssr.trainer.trainer import RLTrainer


def _rows(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def test_per_prompt_rho_uses_the_stored_response_drift(make_config, tmp_path):
    # 8 training prompts, 8 per step: every prompt is revisited each step, so D(x) exists from step 2 on
    cfg = make_config(
        "algorithm.rho.schedule=per_prompt", "data.max_train_items=8", "steps=3", out=tmp_path / "p"
    )
    trainer = RLTrainer(cfg)
    trainer.train()
    rows = {r["step"]: r for r in _rows(tmp_path / "p")}
    assert rows[1]["mssr/rho"] == 0.96  # first visits: D = 0 -> ρ_max
    assert rows[2]["mssr/rho"] < 0.96  # the policy moved (lr 1e-3): D > 0 shortens the memory
    assert len(trainer.response_store) == 8


def test_spo_initialisation_and_prioritised_sampling(make_config, tmp_path):
    cfg = make_config(
        "algorithm.tracker.init=spo",
        "algorithm.tracker.spo_init_rollouts=2",
        "algorithm.sampler.kind=prioritized",
        "steps=2",
        out=tmp_path / "s",
    )
    trainer = RLTrainer(cfg)
    # record every initialisation rollout's reward, to count each prompt's successes independently
    seen: dict[str, list[float]] = {}
    real_generate, real_score = adv.generate, adv.score_responses
    last = {}

    def generate(*args, **kwargs):
        last["batch"] = real_generate(*args, **kwargs)
        return last["batch"]

    def score(tr, responses, records):
        rewards, valid, res = real_score(tr, responses, records)
        for key, r, v in zip(last["batch"].keys, rewards.tolist(), valid.tolist(), strict=True):
            if v:
                seen.setdefault(key, []).append(r)
        return rewards, valid, res

    with pytest.MonkeyPatch.context() as mp:  # the stage looks them up in its module
        mp.setattr(adv, "generate", generate)
        mp.setattr(adv, "score_responses", score)
        trainer.initialize_tracker()
    n = len(trainer.train_prompts)
    assert trainer.counters["init_rollouts"] == 2 * n and len(trainer.tracker) == n
    assert sorted(seen) == sorted(p.key for p in trainer.train_prompts)
    # SPO: α0 = N0 (s + 0.5)/(n0 + 1), β0 = N0 (n0 − s + 0.5)/(n0 + 1), s = successes of the n0 = 2 rollouts,
    # N0 = 8 (reward threshold 0.5)
    counts = set()
    for key, rewards in seen.items():
        assert len(rewards) == 2
        s = sum(r > 0.5 for r in rewards)
        counts.add(s)
        a, b = trainer.tracker.params(key)
        assert abs(a - 8 * (s + 0.5) / 3) < 1e-12 and abs(b - 8 * (2 - s + 0.5) / 3) < 1e-12
    assert len(counts) > 1  # the data gives prompts with different success counts: the check discriminates
    summary = trainer.train()  # continues without initialising twice
    assert summary["init_rollouts"] == 2 * n and summary["steps"] == 2
    assert trainer.sampler.mode == "prioritized"


def test_reused_sampler_logprobs_match_a_teacher_forced_pass(make_config, tmp_path):
    from mssr.rollout.logprobs import compute_logprobs

    trainer = RLTrainer(make_config(out=tmp_path / "lp"))
    d = gen.rollout(trainer, 1, gen.sample_prompts(trainer, 1))
    lps.compute_old_logprobs(trainer, d)
    forward = compute_logprobs(trainer.model, d.batch).logprobs
    mask = d.batch.response_mask > 0
    assert d.batch.rollout_logprobs is not None
    assert float((d.old_logprobs - forward)[mask].abs().max()) < 1e-4


def test_shared_prompt_passes_train_like_full_rows(make_config, tmp_path):
    """`rollout.share_prompts` only changes how the work is done: one update of each trainer on the same
    rollout batch moves the parameters to the same place (float32 reordering aside)."""
    import torch

    trainer = {
        share: RLTrainer(
            make_config(
                "algorithm.name=grpo",
                "optim.weight_decay=0",
                # Adam's first step is ~lr·sign(g), which turns float noise in near-zero gradients into
                # full-size steps; eps=1 makes the step ~lr·g, so parameter changes compare gradients
                "optim.eps=1.0",
                "optim.lr=0.1",
                f"rollout.share_prompts={str(share).lower()}",
                out=tmp_path / f"s{share}",
            )
        )
        for share in (False, True)
    }
    d = gen.rollout(trainer[False], 1, gen.sample_prompts(trainer[False], 1))
    assert len(set(d.batch.prompt_slot.tolist())) < len(d.batch)  # groups share prompts
    gen.score(trainer[False], d)
    lps.compute_old_logprobs(trainer[False], d)
    lps.compute_ref_logprobs(trainer[True], d)
    ref_shared = d.ref_logprobs.clone()
    lps.compute_ref_logprobs(trainer[False], d)
    assert float((ref_shared - d.ref_logprobs).abs().max()) < 1e-5
    before = [p.detach().clone() for p in trainer[True].model.parameters()]
    gen.gather(trainer[False], d)  # everything the later stages need travels in d
    for t in trainer.values():
        adv.compute_advantages(t, d)
        upd.update_policy(t, 1, d)
    rows, shared = (list(trainer[k].model.parameters()) for k in (False, True))
    d_rows = torch.cat([(p - p0).flatten() for p, p0 in zip(rows, before, strict=True)])
    d_shared = torch.cat([(p - p0).flatten() for p, p0 in zip(shared, before, strict=True)])
    assert d_rows.norm() > 1e-4  # the update did something
    assert (d_rows - d_shared).norm() <= 1e-4 * d_rows.norm()


def test_threads_knob(make_config, tmp_path):
    import torch

    from mssr.config import ConfigError

    saved = torch.get_num_threads()
    try:
        RLTrainer(make_config("threads=2", "steps=0", out=tmp_path / "t"))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)
    import pytest

    with pytest.raises(ConfigError, match="threads"):
        make_config("threads=0")


def test_spo_drift_uses_the_policy_that_sampled_the_step(make_config, tmp_path):
    """SPO's D(x) re-scores a prompt's stored response with the policy that sampled this step, i.e. before
    this step's update (the tracker update then sees how far that policy moved since the stored response)."""
    import copy

    import torch

    t = RLTrainer(
        make_config(
            "algorithm.rho.schedule=per_prompt",
            "algorithm.tracker.init=none",
            "data.max_train_items=8",  # every step samples all 8 prompts: step 2 sees step 1's responses
            "optim.lr=0.05",
            out=tmp_path / "spo",
        )
    )
    t.train_step(1)
    snapshot = (
        copy.deepcopy(t.model.state_dict()),
        copy.deepcopy(t.response_store.state_dict()),
        copy.deepcopy(t.sampler.state_dict()),
    )
    seen = {}
    real_rho = t.rho

    def spy(n, *, kl=None, divergence=None):
        seen["drift"] = divergence.clone()
        return real_rho(n, kl=kl, divergence=divergence)

    t.rho = spy
    t.train_step(2)
    # replay step 2 up to the drift with the pre-update weights
    t.model.load_state_dict(snapshot[0])
    t.response_store.load_state_dict(snapshot[1])
    t.sampler.load_state_dict(snapshot[2])
    d = gen.rollout(t, 2, gen.sample_prompts(t, 2))
    gen.score(t, d)
    lps.compute_old_logprobs(t, d)
    lps.compute_policy_drift(t, d)
    assert not torch.isnan(d.drift).all() and (d.drift[~torch.isnan(d.drift)] > 0).any()
    assert torch.equal(torch.isnan(seen["drift"]), torch.isnan(d.drift))
    torch.testing.assert_close(seen["drift"].nan_to_num(), d.drift.nan_to_num(), rtol=0, atol=1e-6)


SCHEDULER_WARNING = "ignore:Seems like `optimizer.step\\(\\)` has been overridden"


def _kl_stop_run(make_config, out, *overrides):
    """Train 3 steps of 4 mini-batches; record each mini-batch's loss-reported KL terms and the optimizer steps."""
    trainer = RLTrainer(
        make_config("optim.mini_batch_prompts=2", "optim.lr=5e-2", "steps=3", *overrides, out=out)
    )
    minibatches: list[list] = []  # per forwarded mini-batch: its norm, then (k1 KL, tokens) per micro-batch
    real_micro_loss, real_update = upd.micro_loss, step_mod.update_policy
    steps_taken = []

    def micro_loss(tr, d, micro, norm, padding=False):
        loss, terms = real_micro_loss(tr, d, micro, norm, padding=padding)
        if not minibatches or minibatches[-1][0] is not norm:  # one norm dict per mini-batch
            minibatches.append([norm])
        minibatches[-1].append((terms["actor/ppo_kl"], float(d.loss_mask[micro].sum())))
        return loss, terms

    def update_policy(tr, step, d):
        before = len(optimizer_steps)
        out = real_update(tr, step, d)
        steps_taken.append(len(optimizer_steps) - before)
        return out

    optimizer_steps = []
    real_step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a, **k: (optimizer_steps.append(1), real_step(*a, **k))[1]
    with pytest.MonkeyPatch.context() as mp:  # the stages look them up in their modules
        mp.setattr(upd, "micro_loss", micro_loss)
        mp.setattr(step_mod, "update_policy", update_policy)
        trainer.train()
    return _rows(out), steps_taken, minibatches


@pytest.mark.filterwarnings(SCHEDULER_WARNING)  # the test wraps optimizer.step to count the updates
def test_target_kl_stops_the_step_at_the_first_mini_batch_over_1_5_target(make_config, tmp_path):
    target = 1e-4
    rows, steps_taken, minibatches = _kl_stop_run(make_config, tmp_path / "kl", f"optim.target_kl={target}")
    # independent of the trainer's bookkeeping: replay the recorded mini-batch KLs (token-weighted over the
    # micro-batches, before each update); each step updates until the first one above 1.5 × target
    kls = [sum(k * w for k, w in mb[1:]) / mb[0]["global_tokens"] for mb in minibatches]
    expected, i = [], 0
    for _ in range(3):
        n = 0
        while n < 4:
            kl = kls[i]
            i += 1
            if kl > 1.5 * target:
                break
            n += 1
        expected.append(n)
    assert i == len(kls)  # every forwarded mini-batch is accounted for, none after a stop
    assert steps_taken == expected and min(expected) < 4, expected  # the stop happened in this run
    by_step = [r for r in rows if "actor/updates" in r]
    assert [r["actor/updates"] for r in by_step] == [float(n) for n in expected]
    assert [r["actor/kl_stopped"] for r in by_step] == [float(n < 4) for n in expected]


@pytest.mark.filterwarnings(SCHEDULER_WARNING)
def test_target_kl_off_or_never_reached_leaves_training_unchanged(make_config, tmp_path):
    off, steps_off, _ = _kl_stop_run(make_config, tmp_path / "off")
    high, steps_high, _ = _kl_stop_run(make_config, tmp_path / "high", "optim.target_kl=1e9")
    assert steps_off == steps_high == [4, 4, 4]
    assert all("actor/kl_stopped" not in r for r in off)
    for a, b in zip(off, high, strict=True):  # timings differ; compare the learning numbers bitwise
        keys = {k for k in a if not k.startswith(("timing_s/", "perf/")) and k != "init/time_s"}
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}


def test_signal_scaled_advantages_run_and_are_logged(make_config, tmp_path):
    from mssr.config import ConfigError

    cfg = make_config(
        "algorithm.single_rollout.scale=signal",
        "algorithm.single_rollout.zero_uniform=true",
        "steps=2",
        out=tmp_path / "g",
    )
    RLTrainer(cfg).train()
    rows = [r for r in _rows(tmp_path / "g") if "adv/signal_gain" in r]
    assert len(rows) == 2
    for r in rows:
        assert 0.0 <= r["adv/signal_gain"] <= 1.0 and r["adv/uniform_batch"] in (0.0, 1.0)
    with pytest.raises(ConfigError, match="single_rollout"):
        make_config(
            "algorithm.name=grpo", "algorithm.single_rollout.scale=signal", out=tmp_path / "x"
        ).validate()


def test_shaping_probe_logs_the_psi_entropy_change_and_leaves_training_unchanged(make_config, tmp_path):
    import torch

    runs = {}
    for every in (0, 1):
        cfg = make_config(f"logging.shaping_probe_every={every}", "steps=3", out=tmp_path / f"p{every}")
        trainer = RLTrainer(cfg)
        trainer.train()
        runs[every] = (
            _rows(tmp_path / f"p{every}"),
            {k: v.clone() for k, v in trainer.model.state_dict().items()},
        )
    (off, w_off), (on, w_on) = runs[0], runs[1]
    for k in w_off:
        assert torch.equal(w_off[k], w_on[k]), k  # the counterfactual restores weights and optimizer exactly
    learn = [r for r in off if "actor/pg_loss" in r]
    assert len(learn) == 3
    assert [r["actor/pg_loss"] for r in learn] == [r["actor/pg_loss"] for r in on if "actor/pg_loss" in r]
    probed = [r for r in on if "probe/entropy_psi" in r]
    assert len(probed) == 3 and not any("probe/entropy_psi" in r for r in off)
    for r in probed:
        assert r["probe/entropy"] > 0
        psi = r["probe/entropy_step_shaped"] - r["probe/entropy_step_unshaped"]
        assert abs(r["probe/entropy_psi"] - psi) < 1e-9


def _one_step_off_and_on(make_config, tmp_path, key: str) -> tuple[dict, dict]:
    """The logged first training step of two one-step runs, with the boolean option ``key`` off and on."""
    rows = []
    for value in ("false", "true"):
        RLTrainer(make_config(f"{key}={value}", "steps=1", out=tmp_path / value)).train()
        rows.append(next(r for r in _rows(tmp_path / value) if "actor/pg_loss" in r))
    return rows[0], rows[1]


def test_centred_shaping_takes_psi_mean_off_every_token(make_config, tmp_path):
    off, on = _one_step_off_and_on(make_config, tmp_path, "algorithm.shaping.center")
    assert "mssr/psi_center" not in off
    # the same rollouts and ψ (step 1 samples before any update); the offset is ψ's mean over the valid tokens
    assert on["mssr/psi_mean"] == off["mssr/psi_mean"] > 0
    assert on["mssr/psi_center"] == pytest.approx(off["mssr/psi_mean"], rel=1e-6)
    shift = off["critic/advantages/mean"] - on["critic/advantages/mean"]
    assert shift == pytest.approx(on["mssr/psi_center"], rel=1e-5)
    assert on["critic/advantages/std"] == pytest.approx(off["critic/advantages/std"], rel=1e-5)


def test_symmetric_shaping_widens_negative_advantages_by_the_same_psi(make_config, tmp_path):
    off, on = _one_step_off_and_on(make_config, tmp_path, "algorithm.shaping.symmetric")
    # the same rollouts and ψ (step 1 samples before any update); only the negative tokens' side differs
    assert on["mssr/psi_mean"] == off["mssr/psi_mean"] > 0 and on["mssr/psi_neg"] == off["mssr/psi_neg"] > 0
    assert on["mssr/gain_pos"] == off["mssr/gain_pos"] > 1
    assert off["mssr/gain_neg"] < 1 < on["mssr/gain_neg"]


def test_centring_and_symmetric_shaping_are_not_combined():
    from mssr.config import ConfigError, load_config
    from mssr.trainer.config import TrainConfig

    with pytest.raises(ConfigError, match=r"algorithm\.shaping\.center and algorithm\.shaping\.symmetric"):
        load_config(TrainConfig, None, ["algorithm.shaping.center=true", "algorithm.shaping.symmetric=true"])

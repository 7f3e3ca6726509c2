"""Advantage estimators against hand-computed golden values and invariants."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mssr.algos import ADVANTAGE_ESTIMATORS, compute_advantages


def _mask(b, t=3):
    return torch.ones(b, t)


def test_grpo_golden_noncontiguous_groups():
    # groups 7 -> rewards [1, 1] (zero std), 3 -> [0, 1]
    r = torch.tensor([1.0, 0.0, 1.0, 1.0])
    out = compute_advantages("grpo", r, _mask(4), group_ids=torch.tensor([7, 3, 7, 3]))
    s = math.sqrt(0.5)  # unbiased std of [0, 1]
    expect = [0.0, -0.5 / (s + 1e-6), 0.0, 0.5 / (s + 1e-6)]
    assert out.scores.tolist() == pytest.approx(expect, abs=1e-6)
    assert out.metrics["zero_std_frac"] == 0.5
    assert torch.equal(out.advantages, out.scores[:, None].expand(4, 3))


def test_grpo_biased_std_and_dr_grpo():
    r = torch.tensor([0.0, 1.0])
    g = torch.tensor([0, 0])
    biased = compute_advantages("grpo", r, _mask(2), group_ids=g, unbiased=False).scores
    assert biased.tolist() == pytest.approx([-0.5 / (0.5 + 1e-6), 0.5 / (0.5 + 1e-6)], abs=1e-7)
    dr = compute_advantages("grpo", r, _mask(2), group_ids=g, scale_by_std=False).scores
    assert dr.tolist() == [-0.5, 0.5]
    eps = compute_advantages("grpo", r, _mask(2), group_ids=g, unbiased=False, eps=0.5).scores
    assert eps.tolist() == pytest.approx([-0.5, 0.5])


def test_grpo_singleton_group_is_an_error_unless_allowed():
    with pytest.raises(ValueError, match="at least 2 responses"):
        compute_advantages("grpo", torch.tensor([1.0, 0.0]), _mask(2), group_ids=torch.tensor([0, 1]))
    out = compute_advantages(
        "grpo", torch.tensor([1.0, 0.0]), _mask(2), group_ids=torch.tensor([0, 1]), allow_singleton=True
    )
    assert out.scores.tolist() == pytest.approx([1.0, 0.0], abs=1e-5)  # verl: mean 0, std 1


def test_rloo_golden():
    out = compute_advantages(
        "rloo", torch.tensor([1.0, 0.0, 0.0]), _mask(3), group_ids=torch.tensor([5, 5, 5])
    )
    assert out.scores.tolist() == pytest.approx([1.0, -0.5, -0.5])
    with pytest.raises(ValueError, match="at least 2"):
        compute_advantages("rloo", torch.tensor([1.0]), _mask(1), group_ids=torch.tensor([0]))


def test_reinforce_pp_token_whitening_golden():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    out = compute_advantages("reinforce_pp", torch.tensor([1.0, 0.0]), mask)
    # valid token values 1, 1, 0: mean 2/3, unbiased var 1/3
    sd = math.sqrt(1 / 3 + 1e-8)
    expect = torch.tensor([[(1 / 3) / sd, (1 / 3) / sd, 0.0], [(-2 / 3) / sd, 0.0, 0.0]])
    assert torch.allclose(out.advantages, expect, atol=1e-6)


def test_single_rollout_golden():
    r = torch.tensor([1.0, 0.0, 1.0, 0.0])
    v = torch.tensor([0.5, 0.5, 0.75, 0.25])
    out = compute_advantages("single_rollout", r, _mask(4), baselines=v)
    # A = [.5, -.5, .25, -.25], mean 0, biased var 0.15625
    sd = math.sqrt(0.15625)
    assert out.scores.tolist() == pytest.approx([0.5 / sd, -0.5 / sd, 0.25 / sd, -0.25 / sd], abs=1e-6)


def test_single_rollout_variance_floor():
    out = compute_advantages(
        "single_rollout", torch.tensor([1.0, 1.0]), _mask(2), baselines=torch.tensor([0.5, 0.5])
    )
    assert out.scores.tolist() == [0.0, 0.0]
    # tiny spread: the floor 1e-6 bounds the scale: A = ±1e-4 -> var 1e-8 -> divide by 1e-3
    out = compute_advantages(
        "single_rollout", torch.tensor([1.0, 1.0]), _mask(2), baselines=torch.tensor([1.0 - 1e-4, 1.0 + 1e-4])
    )
    assert out.scores.tolist() == pytest.approx([0.1, -0.1], rel=1e-3)


def test_single_rollout_signal_scale_golden():
    # stale baseline: A = [1, -1, 1, -1], σ_A = 1; rewards [1, 0, 1, 0], σ_r = 0.5 -> gain 0.5
    r, v = torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 1.0, 0.0, 1.0])
    out = compute_advantages("single_rollout", r, _mask(4), baselines=v, scale="signal")
    assert out.scores.tolist() == pytest.approx([0.5, -0.5, 0.5, -0.5], abs=1e-6)
    assert out.metrics["signal_gain"] == pytest.approx(0.5)
    # a baseline that explains part of the reward: A = [.1, -.9, -.1, -.1], σ_A = sqrt(.1475) = .38406 <
    # σ_r = sqrt(.1875) = .43301 -> gain 1, the unit-spread advantage unchanged
    r, v = torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([0.9, 0.9, 0.1, 0.1])
    out = compute_advantages("single_rollout", r, _mask(4), baselines=v, scale="signal")
    sd = math.sqrt(0.1475)
    assert out.scores.tolist() == pytest.approx([0.35 / sd, -0.65 / sd, 0.15 / sd, 0.15 / sd], abs=1e-6)
    assert out.metrics["signal_gain"] == 1.0
    # equal rewards carry no signal: σ_r = 0 -> every advantage 0 (unit scale gives unit spread here)
    r, v = torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.2, 0.5, 0.8])
    out = compute_advantages("single_rollout", r, _mask(3), baselines=v, scale="signal")
    assert out.scores.tolist() == [0.0, 0.0, 0.0]
    unit = compute_advantages("single_rollout", r, _mask(3), baselines=v)
    assert float(unit.scores.std(unbiased=False)) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="scale"):
        compute_advantages("single_rollout", r, _mask(3), baselines=v, scale="nope")


def test_single_rollout_zero_uniform():
    r, v = torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.2, 0.5, 0.8])
    out = compute_advantages("single_rollout", r, _mask(3), baselines=v, zero_uniform=True)
    assert out.scores.tolist() == [0.0, 0.0, 0.0] and out.metrics["uniform_batch"] == 1.0
    assert out.advantages.abs().sum() == 0
    # a batch with any spread in its rewards is untouched (the golden values above)
    r, v = torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([0.5, 0.5, 0.75, 0.25])
    out = compute_advantages("single_rollout", r, _mask(4), baselines=v, zero_uniform=True)
    sd = math.sqrt(0.15625)
    assert out.scores.tolist() == pytest.approx([0.5 / sd, -0.5 / sd, 0.25 / sd, -0.25 / sd], abs=1e-6)
    assert out.metrics["uniform_batch"] == 0.0


def test_single_rollout_needs_baselines_and_finite_rewards():
    with pytest.raises(ValueError, match="baselines"):
        compute_advantages("single_rollout", torch.tensor([1.0]), _mask(1))
    with pytest.raises(ValueError, match="NaN"):
        compute_advantages(
            "single_rollout", torch.tensor([float("nan")]), _mask(1), baselines=torch.tensor([0.5])
        )


def test_unknown_estimator_lists_known():
    with pytest.raises(KeyError, match="grpo"):
        compute_advantages("nope", torch.tensor([1.0]), _mask(1))
    assert {"grpo", "rloo", "reinforce_pp", "single_rollout"} <= set(ADVANTAGE_ESTIMATORS.names())


def test_padding_gets_zero_advantage():
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    out = compute_advantages(
        "single_rollout", torch.tensor([1.0, 0.0]), mask, baselines=torch.tensor([0.5, 0.5])
    )
    assert out.advantages[0, 1] == 0.0 and out.advantages[1, 1] != 0.0


binary = st.lists(st.sampled_from([0.0, 1.0]), min_size=2, max_size=40)


@settings(max_examples=60, deadline=None)
@given(binary, st.integers(2, 5), st.booleans())
def test_grpo_groups_sum_to_zero_and_constant_groups_are_zero(rewards, n_groups, unbiased):
    r = torch.tensor(rewards)
    g = torch.arange(len(rewards)) % n_groups
    if torch.bincount(g).min() < 2:
        return
    out = compute_advantages("grpo", r, _mask(len(r)), group_ids=g * 11 + 3, unbiased=unbiased)
    for k in range(n_groups):
        sel = g == k
        assert abs(float(out.scores[sel].sum())) < 1e-4
        if r[sel].unique().numel() == 1:
            assert torch.all(out.scores[sel] == 0)


@settings(max_examples=60, deadline=None)
@given(binary, st.lists(st.floats(0.01, 0.99), min_size=40, max_size=40))
def test_single_rollout_is_standardised(rewards, vals):
    r = torch.tensor(rewards, dtype=torch.float64).float()
    v = torch.tensor(vals[: len(rewards)]).float()
    out = compute_advantages("single_rollout", r, _mask(len(r)), baselines=v)
    raw = (r - v).double()
    if raw.var(unbiased=False) > 1e-4:
        assert abs(float(out.scores.double().mean())) < 1e-5
        assert float(out.scores.double().std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)

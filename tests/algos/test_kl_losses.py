"""KL estimators, loss aggregation (micro-batch invariance), the clipped policy loss."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mssr.algos import AGG_MODES, agg_loss, kl_penalty, per_sample_kl, policy_loss
from mssr.algos.kl import full_kl_from_logits


def test_kl_estimators_golden():
    lp, ref = torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.25]))
    assert kl_penalty(lp, ref, "k1").item() == pytest.approx(math.log(2))
    assert kl_penalty(lp, ref, "k2").item() == pytest.approx(0.5 * math.log(2) ** 2)
    # d = ℓ_ref − ℓ = −log 2: exp(d) − d − 1 = 0.5 + log 2 − 1
    assert kl_penalty(lp, ref, "k3").item() == pytest.approx(0.5 + math.log(2) - 1)


def test_k3_clamps():
    # d = 30 clamps to 20 -> exp(20) − 21 clamps to 10
    assert kl_penalty(torch.tensor([-30.0]), torch.tensor([0.0]), "k3").item() == 10.0
    # d = −30 clamps to −20 -> exp(−20) + 19 -> 10
    assert kl_penalty(torch.tensor([0.0]), torch.tensor([-30.0]), "k3").item() == 10.0
    assert kl_penalty(torch.tensor([-1.0]), torch.tensor([-1.0]), "k3").item() == 0.0


def test_per_sample_kl_is_token_mean():
    lp = torch.log(torch.tensor([[0.5, 0.5, 0.9], [0.5, 0.1, 0.1]]))
    ref = torch.log(torch.tensor([[0.25, 0.5, 0.1], [0.5, 0.1, 0.1]]))
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    k = per_sample_kl(lp, ref, mask)
    assert k.tolist() == pytest.approx([(0.5 + math.log(2) - 1) / 2, 0.0], abs=1e-7)


def test_full_kl_golden():
    p = torch.log(torch.tensor([[0.5, 0.5]]))
    q = torch.log(torch.tensor([[0.25, 0.75]]))
    expect = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert full_kl_from_logits(p, q).item() == pytest.approx(expect, abs=1e-6)


def test_agg_modes_golden():
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0], [9.0, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # last row fully masked
    assert agg_loss(loss, mask, "token-mean").item() == pytest.approx(10 / 4)
    assert agg_loss(loss, mask, "seq-mean-token-mean").item() == pytest.approx((2 + 4) / 2)
    assert agg_loss(loss, mask, "seq-mean-token-sum").item() == pytest.approx((6 + 4) / 2)
    assert agg_loss(loss, mask, "seq-mean-token-sum-norm").item() == pytest.approx(10 / 2 / 3)
    assert agg_loss(loss, mask, "seq-mean-token-sum-norm", horizon=10).item() == pytest.approx(10 / 2 / 10)
    with pytest.raises(ValueError, match="token-mean"):
        agg_loss(loss, mask, "mean")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 6), st.integers(0, 10_000), st.sampled_from(AGG_MODES))
def test_loss_is_invariant_to_micro_batch_splitting(b, t, seed, mode):
    g = torch.Generator().manual_seed(seed)
    loss = torch.randn(b, t, generator=g, dtype=torch.float64)
    mask = (torch.rand(b, t, generator=g) > 0.3).double()
    full = agg_loss(loss, mask, mode, horizon=t)
    n_tok, n_seq = mask.sum(), (mask.sum(-1) > 0).sum()
    cuts = sorted(set(torch.randint(0, b + 1, (3,), generator=g).tolist()) | {0, b})
    parts = [
        agg_loss(loss[i:j], mask[i:j], mode, global_tokens=n_tok, global_seqs=n_seq, horizon=t)
        for i, j in itertools.pairwise(cuts)
        if j > i
    ]
    assert float(sum(parts)) == pytest.approx(float(full), abs=1e-9)


def test_ppo_clip_golden():
    ratios = torch.tensor([[1.5, 1.5, 4.0, 0.5]])
    adv = torch.tensor([[1.0, -1.0, -1.0, 1.0]])
    old = torch.zeros(1, 4)
    out = policy_loss("ppo_clip", torch.log(ratios), old, adv, torch.ones(1, 4))
    # per-token: max(-A r, -A clip(r, .8, 1.3)) then dual clip at -3A for A<0: [-1.3, 1.5, 3, -0.5]
    assert out.loss.item() == pytest.approx((-1.3 + 1.5 + 3.0 - 0.5) / 4, abs=1e-6)
    assert out.metrics["pg_clipfrac"] == pytest.approx(0.25)
    assert out.metrics["pg_clipfrac_lower"] == pytest.approx(0.25)
    expect_kl = -(2 * math.log(1.5) + math.log(4) + math.log(0.5)) / 4
    assert out.metrics["ppo_kl"] == pytest.approx(expect_kl, abs=1e-6)


def test_ppo_clip_high_is_separate_and_log_ratio_clamped():
    adv = torch.ones(1, 1)
    lp = torch.log(torch.tensor([[1.25]]))
    # 1.25 < 1 + 0.3: not clipped with clip_high 0.3, clipped with a symmetric 0.2
    assert policy_loss("ppo_clip", lp, torch.zeros(1, 1), adv, torch.ones(1, 1)).loss.item() == pytest.approx(
        -1.25
    )
    sym = policy_loss("ppo_clip", lp, torch.zeros(1, 1), adv, torch.ones(1, 1), clip_high=0.2)
    assert sym.loss.item() == pytest.approx(-1.2)
    huge = policy_loss(
        "ppo_clip", torch.tensor([[100.0]]), torch.zeros(1, 1), -adv, torch.ones(1, 1), dual_clip_c=None
    )
    assert huge.loss.item() == pytest.approx(math.exp(20), rel=1e-5)  # exp(clamp(100, ±20))


def test_ppo_gradient_matches_closed_form_inside_clip():
    lp = torch.zeros(1, 2, requires_grad=True)
    adv = torch.tensor([[2.0, -1.0]])
    policy_loss("ppo_clip", lp, torch.zeros(1, 2), adv, torch.ones(1, 2)).loss.backward()
    # ratio = 1 inside the clip range: d/dℓ (−A e^ℓ / 2) = −A/2
    assert lp.grad.tolist() == [[-1.0, 0.5]]

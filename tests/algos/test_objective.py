"""The full objective (policy loss + KL − entropy + cross-modal KL) against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from mssr.algos.objective import ObjectiveWeights, rl_objective

LP = [-1.0, -2.0]  # ℓ_θ of two response tokens
OLD = [-1.2, -1.5]
ADV = [1.0, -1.0]
REF = [-1.1, -1.9]
TEXT = [-1.5, -2.0]  # ℓ with the image removed


def _hand_terms() -> dict[str, float]:
    """docs/method.md §5-§6 transcribed: PPO clip-higher (0.2/0.3) + dual clip 3, k3 KL, −p log p entropy,
    k3(ℓ_text ‖ ℓ_image) cross-modal term, each a token mean over 2 tokens."""
    pg = []
    for lp, old, a in zip(LP, OLD, ADV):
        r = math.exp(lp - old)
        clipped = max(-a * r, -a * min(max(r, 0.8), 1.3))
        pg.append(min(clipped, -a * 3.0) if a < 0 else clipped)
    k3 = [math.exp(ref - lp) - (ref - lp) - 1 for lp, ref in zip(LP, REF)]
    ent = [-math.exp(lp) * lp for lp in LP]
    cm = [math.exp(img - txt) - (img - txt) - 1 for img, txt in zip(LP, TEXT)]
    return {"pg": sum(pg) / 2, "kl": sum(k3) / 2, "ent": sum(ent) / 2, "cm": sum(cm) / 2}


def _run(weights: ObjectiveWeights, **kw):
    lp = torch.tensor([LP], requires_grad=True)
    text = torch.tensor([TEXT], requires_grad=True)
    out = rl_objective(
        lp,
        torch.tensor([OLD]),
        torch.tensor([ADV]),
        torch.ones(1, 2),
        weights,
        ref_logprob=torch.tensor([REF]),
        logprob_text=text,
        global_tokens=2.0,
        **kw,
    )
    return out, lp, text


def test_policy_loss_alone_matches_the_hand_value():
    h = _hand_terms()
    out, _, _ = _run(ObjectiveWeights())
    assert float(out.loss) == pytest.approx(h["pg"], abs=1e-6)
    assert set(out.metrics) == {
        "actor/pg_loss",
        "actor/pg_clipfrac",
        "actor/pg_clipfrac_lower",
        "actor/ppo_kl",
    }
    # token 2: ratio exp(-0.5) = 0.61 < 0.8 with a negative advantage → the clip is active there only
    assert out.metrics["actor/pg_clipfrac"] == pytest.approx(0.5)


def test_all_four_terms_add_with_their_weights():
    h = _hand_terms()
    w = ObjectiveWeights(kl_coef=0.5, entropy_coef=0.1, crossmodal_coef=0.2)
    out, lp, text = _run(w)
    expected = h["pg"] + 0.5 * h["kl"] - 0.1 * h["ent"] + 0.2 * h["cm"]
    assert float(out.loss) == pytest.approx(expected, abs=1e-6)
    assert out.metrics["actor/kl_loss"] == pytest.approx(h["kl"], abs=1e-6)
    assert out.metrics["actor/entropy_loss"] == pytest.approx(h["ent"], abs=1e-6)
    assert out.metrics["actor/crossmodal_kl"] == pytest.approx(h["cm"], abs=1e-6)
    out.loss.backward()
    # the cross-modal term is differentiable through the text-only forward too
    assert text.grad is not None and float(text.grad.abs().sum()) > 0
    assert lp.grad is not None and torch.isfinite(lp.grad).all()


def test_missing_inputs_of_a_weighted_term_are_refused():
    with pytest.raises(ValueError, match="ref_logprob"):
        rl_objective(
            torch.zeros(1, 2),
            torch.zeros(1, 2),
            torch.zeros(1, 2),
            torch.ones(1, 2),
            ObjectiveWeights(kl_coef=1),
        )
    with pytest.raises(ValueError, match="logprob_text"):
        rl_objective(
            torch.zeros(1, 2),
            torch.zeros(1, 2),
            torch.zeros(1, 2),
            torch.ones(1, 2),
            ObjectiveWeights(crossmodal_coef=1),
        )


def test_truncated_is_weights_match_the_hand_values():
    from mssr.algos.objective import truncated_is_weights

    old = torch.tensor([[-1.0, -2.0, -0.5, -3.0]])
    sampler = torch.tensor([[-1.5, -0.5, -2.0, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    w = truncated_is_weights(old, sampler, mask, cap=2.0)
    # exp(0.5) = 1.6487 kept; exp(-1.5) = 0.2231 kept (no lower truncation); exp(1.5) = 4.48 → 2; masked → 0
    assert w.tolist()[0] == pytest.approx([math.exp(0.5), math.exp(-1.5), 2.0, 0.0], abs=1e-6)
    with pytest.raises(ValueError, match="cap"):
        truncated_is_weights(old, sampler, mask, cap=0.5)


def test_importance_weights_scale_each_tokens_policy_term():
    """Per token: w_t · PPO term (hand), the KL term unweighted (verl applies TIS to the pg loss only)."""
    w = [1.6487, 0.5]
    pg = []
    for lp, old, a, wt in zip(LP, OLD, ADV, w):
        r = math.exp(lp - old)
        clipped = max(-a * r, -a * min(max(r, 0.8), 1.3))
        pg.append(wt * (min(clipped, -a * 3.0) if a < 0 else clipped))
    out, _, _ = _run(ObjectiveWeights(kl_coef=0.5), is_weights=torch.tensor([w]))
    assert float(out.loss) == pytest.approx(sum(pg) / 2 + 0.5 * _hand_terms()["kl"], abs=1e-6)

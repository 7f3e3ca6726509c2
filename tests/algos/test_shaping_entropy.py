"""Entropy-based advantage shaping (docs/method.md §4) and the entropy functions."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mssr.algos import entropy_from_logits, sampled_token_entropy, shape_advantages


def test_shaping_golden():
    a = torch.tensor([[1.0, -1.0, 0.1, 0.0]])
    h = torch.full((1, 4), 0.3)
    out = shape_advantages(a, h, torch.ones(1, 4), alpha=0.4, kappa=2.0)
    assert out.psi.tolist()[0] == pytest.approx([0.12, 0.12, 0.05, 0.0])
    assert out.advantages.tolist()[0] == pytest.approx([1.12, -0.88, 0.15, 0.0])
    assert out.metrics["shaping_cap_frac"] == 0.5  # tokens 2 and 3: α·H > |Â|/κ
    assert out.metrics["psi_mean"] == pytest.approx(0.29 / 4)
    # by the sign of Â: positive tokens 1 and 0.1 get ψ 0.12 and 0.05, the negative token 0.12; the zero token none
    assert out.metrics["psi_pos"] == pytest.approx(0.085)
    assert out.metrics["psi_neg"] == pytest.approx(0.12)
    assert out.metrics["gain_pos"] == pytest.approx((1.12 + 0.15) / 1.1)
    assert out.metrics["gain_neg"] == pytest.approx(0.88)


def test_symmetric_shaping_golden():
    """The knock-out of the sign asymmetry: the same ψ as test_shaping_golden, added with Â's sign."""
    a = torch.tensor([[1.0, -1.0, 0.1, 0.0]])
    out = shape_advantages(a, torch.full((1, 4), 0.3), torch.ones(1, 4), alpha=0.4, kappa=2.0, symmetric=True)
    assert out.psi.tolist()[0] == pytest.approx([0.12, 0.12, 0.05, 0.0])
    assert out.advantages.tolist()[0] == pytest.approx([1.12, -1.12, 0.15, 0.0])
    assert out.metrics["gain_pos"] == pytest.approx((1.12 + 0.15) / 1.1)
    assert out.metrics["gain_neg"] == pytest.approx(1.12)  # widened like the positive token, not softened
    # with equal and opposite advantages the shaped ones still cancel: no net offset
    pair = shape_advantages(
        torch.tensor([[0.7, -0.7]]), torch.full((1, 2), 0.2), torch.ones(1, 2), symmetric=True
    )
    assert pair.advantages.sum().item() == pytest.approx(0.0)


def test_shaping_gains_by_sign_without_one_sign():
    out = shape_advantages(torch.tensor([[2.0, 0.5, 0.0]]), torch.tensor([[0.5, 0.5, 0.5]]), torch.ones(1, 3))
    # ψ = min(α·H, |Â|/κ) = (min(0.2, 1), min(0.2, 0.25), 0) = (0.2, 0.2, 0), so Ã = (2.2, 0.7, 0)
    assert out.metrics["gain_pos"] == pytest.approx(2.9 / 2.5)
    assert out.metrics["psi_neg"] == 0.0 and out.metrics["gain_neg"] == 1.0  # no negative token: no change


def test_shaping_masks_padding_and_carries_no_gradient():
    a = torch.tensor([[1.0, 1.0]], requires_grad=True)
    h = torch.tensor([[0.2, 0.2]], requires_grad=True)
    out = shape_advantages(a, h, torch.tensor([[1.0, 0.0]]))
    assert not out.advantages.requires_grad and not out.psi.requires_grad
    assert out.advantages.tolist() == [[pytest.approx(1.08), 0.0]]


def test_shaping_rejects_sign_flipping_kappa():
    with pytest.raises(ValueError, match="kappa"):
        shape_advantages(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1), kappa=0.5)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 5), st.floats(-5, -1e-6)), min_size=1, max_size=30),
    st.floats(0, 2),
    st.floats(1, 10),
    st.data(),
)
def test_shaping_never_flips_sign_and_respects_both_caps(advs, alpha, kappa, data):
    n = len(advs)
    ents = data.draw(st.lists(st.floats(0, 1 / math.e), min_size=n, max_size=n))
    a = torch.tensor([advs], dtype=torch.float32)
    h = torch.tensor([ents], dtype=torch.float32)
    out = shape_advantages(a, h, torch.ones(1, n), alpha=alpha, kappa=kappa)
    assert torch.all(out.psi >= 0)
    assert torch.all(out.psi <= a.abs() / kappa + 1e-6)
    assert torch.all(out.psi <= alpha * h + 1e-6)
    assert torch.all(torch.sign(out.advantages) * torch.sign(a) >= 0)
    assert torch.all((out.advantages == 0) == (a == 0)) or kappa == 1.0


def test_sampled_entropy_golden_and_range():
    lp = torch.log(torch.tensor([1.0, 0.5, 1 / math.e, 1e-9]))
    h = sampled_token_entropy(lp)
    assert h.tolist() == pytest.approx([0.0, 0.5 * math.log(2), 1 / math.e, 1e-9 * -math.log(1e-9)], abs=1e-7)
    assert float(sampled_token_entropy(torch.linspace(-30, 0, 1000)).max()) <= 1 / math.e + 1e-6


def test_full_entropy_golden_and_chunking():
    uniform = torch.zeros(2, 3, 8)
    assert torch.allclose(entropy_from_logits(uniform), torch.full((2, 3), math.log(8)))
    logits = torch.randn(3, 7, 50, generator=torch.Generator().manual_seed(0)) * 3
    p = torch.softmax(logits, -1)
    naive = -(p * torch.log(p)).sum(-1)
    for chunk in (1, 4, 5, 1000):
        assert torch.allclose(entropy_from_logits(logits, chunk_size=chunk), naive, atol=1e-5)
    # temperature divides the logits
    assert torch.allclose(entropy_from_logits(logits * 2, temperature=2.0), naive, atol=1e-5)

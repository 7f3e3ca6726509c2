"""The expected effect of entropy shaping on a position's entropy: closed forms against autograd and finite
differences, and the sign on constructed distributions (docs/algorithms.md "What the shaping does to entropy")."""

from __future__ import annotations

import math

import pytest
import torch

from mssr.algos import entropy_change, expected_shaping_logit_change


def _entropy(z: torch.Tensor) -> torch.Tensor:
    p = torch.softmax(z, -1)
    return -(p * torch.log(p)).sum(-1)


def _autograd_expectation(z: torch.Tensor, psi_of: callable) -> torch.Tensor:
    """Σ_a p_a ψ(a) ∇_z log softmax(z)_a, each gradient from autograd (independent of the closed form)."""
    p = torch.softmax(z, -1)
    total = torch.zeros_like(z)
    for a in range(z.numel()):
        zz = z.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.log_softmax(zz, -1)[a], zz)
        total += p[a] * psi_of(p, a) * g
    return total


def test_sampled_mode_matches_autograd_and_the_hand_value():
    z = torch.log(torch.tensor([0.7, 0.3], dtype=torch.float64))
    dz = expected_shaping_logit_change(torch.softmax(z, -1), alpha=0.4)
    ref = _autograd_expectation(z, lambda p, a: 0.4 * float(-p[a] * torch.log(p[a])))
    assert torch.allclose(dz, ref, atol=1e-12)
    # by hand: h = (0.24967, 0.36119), E_p h = 0.28313 -> δz = 0.4 (0.7·(−0.03346), 0.3·0.07806)
    assert dz.tolist() == pytest.approx([-0.009369, 0.009367], abs=2e-6)
    # dH = −Σ p (log p + H) δz = +0.003334: the minority token of a 70/30 fork is pushed up
    assert float(entropy_change(torch.softmax(z, -1), dz)) == pytest.approx(0.003334, abs=2e-6)


def test_entropy_change_is_the_derivative_of_the_entropy():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(7, generator=g, dtype=torch.float64) * 2
    dz = torch.randn(7, generator=g, dtype=torch.float64)
    eps = 1e-6
    fd = (_entropy(z + eps * dz) - _entropy(z - eps * dz)) / (2 * eps)
    assert float(entropy_change(torch.softmax(z, -1), dz)) == pytest.approx(float(fd), rel=1e-6)


def test_sampled_mode_sharpens_a_diffuse_tail_and_broadens_a_few_alternatives():
    p = torch.tensor([0.9] + [0.1 / 100] * 100, dtype=torch.float64)
    dz = expected_shaping_logit_change(p, alpha=0.4)
    assert dz[0] > 0 and (dz[1:] < 0).all()  # the top token gains at the tail's expense
    assert float(entropy_change(p, dz)) < 0
    # ... but a few mid-probability alternatives (h above the p-weighted mean) gain instead: entropy rises
    z = torch.log(torch.tensor([0.9, 0.05, 0.03, 0.02], dtype=torch.float64))
    ref = _autograd_expectation(z, lambda q, a: 0.4 * float(-q[a] * torch.log(q[a])))
    assert torch.allclose(expected_shaping_logit_change(torch.softmax(z, -1), alpha=0.4), ref, atol=1e-12)
    assert ref[0] < 0 and ref[1] > 0
    assert float(entropy_change(torch.softmax(z, -1), ref)) > 0


def test_sampled_mode_on_forks_and_full_mode_is_zero_in_expectation():
    even = torch.tensor([0.5, 0.5], dtype=torch.float64)
    assert expected_shaping_logit_change(even).abs().max() == 0  # symmetric fork: no drift
    top_heavy = torch.tensor([0.8, 0.2], dtype=torch.float64)
    assert float(entropy_change(top_heavy, expected_shaping_logit_change(top_heavy))) > 0
    # in general the tokens whose h = −p log p is above its p-weighted mean gain, the others lose
    p = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    h = -p * torch.log(p)
    dz = expected_shaping_logit_change(p, alpha=1.0)
    assert torch.equal(torch.sign(dz), torch.sign(h - (p * h).sum()))
    # full mode: ψ is the same for every token at the position -> E[δz] = αH(p − p) = 0 (autograd agrees)
    z = torch.log(p)
    ref = _autograd_expectation(z, lambda q, a: 0.4 * float(-(q * torch.log(q)).sum()))
    assert ref.abs().max() < 1e-12
    assert expected_shaping_logit_change(p, mode="full").abs().max() == 0
    with pytest.raises(ValueError, match="mode"):
        expected_shaping_logit_change(p, mode="nope")
    with pytest.raises(ValueError, match="sum to 1"):
        expected_shaping_logit_change(torch.tensor([0.5, 0.6]))
    assert math.isclose(float(entropy_change(p, torch.zeros(3))), 0.0)

"""What entropy shaping does to a position's distribution, in expectation (docs/algorithms.md "What the
shaping does to entropy").

At one position with logits ``z`` and ``p = softmax(z)``, a policy-gradient step on the sampled token ``a ~ p``
with advantage ``Ã = Â + ψ(a)`` moves the logits by ``η Ã (e_a − p)``. The part due to ψ, averaged over the
sampled token (cap not binding), is

- ``sampled`` mode, ``ψ(a) = α h(p_a)`` with ``h(q) = −q log q``:  ``E[δz] = α p ⊙ (h(p) − E_p[h(p)])``;
- ``full`` mode, ``ψ = α H(p)``, the same for every token at the position: ``E[δz] = α H (p − p) = 0``.

A logit change ``δz`` changes the entropy to first order by ``dH = −Σ_v p_v (log p_v + H) δz_v``
(``= −Cov_p(log p, δz)``). Pure functions over probability vectors ``[..., V]``.
"""

from __future__ import annotations

import torch

SHAPING_MODES = ("sampled", "full")


def _check(probs: torch.Tensor) -> torch.Tensor:
    p = probs.to(torch.float64)
    if (p < 0).any() or not torch.allclose(p.sum(-1), torch.ones((), dtype=p.dtype), atol=1e-6):
        raise ValueError("probs must be non-negative and sum to 1 over the last dimension")
    return p


def _xlogx(p: torch.Tensor) -> torch.Tensor:
    return torch.where(p > 0, p * torch.log(p.clamp_min(1e-300)), torch.zeros_like(p))


def expected_shaping_logit_change(
    probs: torch.Tensor, *, alpha: float = 0.4, mode: str = "sampled"
) -> torch.Tensor:
    """``E_{a~p}[ψ(a) (e_a − p)]``: the expected logit change per unit step size that ψ adds (uncapped)."""
    if mode not in SHAPING_MODES:
        raise ValueError(f"mode must be one of {SHAPING_MODES}, got {mode!r}")
    p = _check(probs)
    if mode == "full":
        return torch.zeros_like(p)
    h = -_xlogx(p)
    mean_h = (p * h).sum(-1, keepdim=True)
    return alpha * p * (h - mean_h)


def entropy_change(probs: torch.Tensor, logit_change: torch.Tensor) -> torch.Tensor:
    """First-order entropy change ``dH = −Σ_v p_v (log p_v + H) δz_v`` of ``softmax`` under ``δz``."""
    p = _check(probs)
    dz = logit_change.to(torch.float64)
    logp = torch.where(p > 0, torch.log(p.clamp_min(1e-300)), torch.zeros_like(p))
    h = -_xlogx(p).sum(-1, keepdim=True)
    return -(p * (logp + h) * dz).sum(-1)

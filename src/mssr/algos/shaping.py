"""Entropy-based advantage shaping, the "S" of MSSR (docs/method.md §4; Cheng et al., arXiv 2506.14758).

``ψ_t = min(α · H_t, |Â_t| / κ)`` (no gradient) and ``Ã_t = Â_t + ψ_t``.

Because ``0 ≤ ψ ≤ |Â|/κ`` with κ ≥ 1 the sign of an advantage never flips: a positive token's advantage is
boosted by up to ``1/κ`` (50 % at κ = 2), a negative one's penalty reduced by up to ``1/κ``; uncertain tokens
(high ``H``) get the most.

``symmetric=True`` (ours, a knock-out of the regime study, docs/algorithms.md "What the shaping does to
entropy"): ``Ã_t = Â_t + sign(Â_t)·ψ_t`` — the same ψ widens negative advantages as it widens positive ones, so
shaping no longer weights positive tokens above negative ones (nor adds a net offset).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mssr.algos.masked import masked_mean


@dataclass
class ShapingOutput:
    advantages: torch.Tensor  # Ã, [B, T], detached
    psi: torch.Tensor  # ψ, [B, T], 0 on padding
    metrics: dict[str, float] = field(default_factory=dict)


def shape_advantages(
    advantages: torch.Tensor,
    entropy: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    alpha: float = 0.4,
    kappa: float = 2.0,
    top_fraction: float = 0.1,
    symmetric: bool = False,
) -> ShapingOutput:
    """Apply ``Ã = Â + min(α·H, |Â|/κ)`` token-wise (``symmetric``: ``Â + sign(Â)·min(…)``); both inputs are
    detached first.

    Metrics (over valid tokens): ``psi_mean``; ``psi_top`` — mean ψ over the ``top_fraction`` most uncertain
    tokens (shows whether shaping acts where it should); ``shaping_cap_frac`` — fraction of tokens where the
    ``|Â|/κ`` cap binds (``α·H > |Â|/κ``); ``psi_rel`` — mean ``ψ/|Â|`` where ``Â ≠ 0``. Split by the sign of
    ``Â`` (docs/algorithms.md "What the shaping does to entropy"): ``psi_pos`` / ``psi_neg`` — mean ψ over tokens
    with ``Â > 0`` / ``Â < 0``; ``gain_pos = Σ_{Â>0} Ã / Σ_{Â>0} Â`` (≥ 1) and ``gain_neg = Σ_{Â<0} |Ã| / Σ_{Â<0} |Â|``
    (≤ 1; ≥ 1 when ``symmetric``) — the weight shaping gives positive and negative tokens relative to no shaping (1
    when a sign is absent).
    """
    if alpha < 0:
        raise ValueError(f"alpha must be ≥ 0, got {alpha}")
    if kappa < 1:
        raise ValueError(f"kappa must be ≥ 1 so that shaping never flips an advantage's sign, got {kappa}")
    if advantages.shape != entropy.shape or advantages.shape != response_mask.shape:
        raise ValueError(
            f"shape mismatch: advantages {tuple(advantages.shape)}, entropy {tuple(entropy.shape)}, "
            f"mask {tuple(response_mask.shape)}"
        )
    with torch.no_grad():
        a = advantages.detach().float()
        h = entropy.detach().float()
        mask = response_mask.to(torch.float32)
        bonus = alpha * h
        cap = a.abs() / kappa
        psi = torch.minimum(bonus, cap) * mask
        shaped = (a + (torch.sign(a) * psi if symmetric else psi)) * mask
        valid = mask > 0
        n_valid = int(valid.sum())
        metrics = {
            "psi_mean": float(masked_mean(psi, mask)),
            "shaping_cap_frac": 0.0,
            "psi_top": 0.0,
            "psi_rel": 0.0,
            "psi_pos": 0.0,
            "psi_neg": 0.0,
            "gain_pos": 1.0,
            "gain_neg": 1.0,
        }
        if n_valid:
            metrics["shaping_cap_frac"] = float((bonus > cap)[valid].float().mean())
            k = max(1, round(top_fraction * n_valid))
            top_idx = torch.topk(h[valid], k).indices
            metrics["psi_top"] = float(psi[valid][top_idx].mean())
            nz = valid & (a != 0)
            if nz.any():
                metrics["psi_rel"] = float((psi[nz] / a[nz].abs()).mean())
            for sign, part in (("pos", valid & (a > 0)), ("neg", valid & (a < 0))):
                if part.any():
                    metrics[f"psi_{sign}"] = float(psi[part].mean())
                    metrics[f"gain_{sign}"] = float(shaped[part].abs().sum() / a[part].abs().sum())
    return ShapingOutput(shaped, psi, metrics)

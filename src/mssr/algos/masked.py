"""Masked reductions over ``[B, T]`` token tensors (mask: 1 = valid response token)."""

from __future__ import annotations

import torch


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    return (x * mask).sum() if dim is None else (x * mask).sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over valid entries; 0 where there are none (never NaN)."""
    mask = mask.to(x.dtype)
    if dim is None:
        return masked_sum(x, mask) / mask.sum().clamp(min=1.0)
    return masked_sum(x, mask, dim) / mask.sum(dim=dim).clamp(min=1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor, *, unbiased: bool = True) -> torch.Tensor:
    """Variance over all valid entries; ``unbiased`` applies Bessel's correction (ddof=1)."""
    mask = mask.to(x.dtype)
    n = mask.sum()
    mean = masked_sum(x, mask) / n.clamp(min=1.0)
    ss = masked_sum((x - mean) ** 2, mask)
    if unbiased:
        if n <= 1:
            return torch.zeros((), dtype=x.dtype, device=x.device)
        return ss / (n - 1)
    return ss / n.clamp(min=1.0)


def masked_whiten(
    x: torch.Tensor, mask: torch.Tensor, *, eps: float = 1e-8, unbiased: bool = True, shift_mean: bool = True
) -> torch.Tensor:
    """``(x − mean) / sqrt(var + eps)`` over the valid entries; invalid entries are set to 0."""
    mask_f = mask.to(x.dtype)
    mean = masked_mean(x, mask_f)
    var = masked_var(x, mask_f, unbiased=unbiased)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask_f

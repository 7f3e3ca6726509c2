"""KL estimators between a policy ``π`` and a reference ``π_ref`` from per-token log-probs (Schulman's k1/k2/k3).

All take ``logprob = log π(o_t)`` and ``ref_logprob = log π_ref(o_t)`` of the same sampled tokens (sampled
from ``π``) and return per-token values, differentiable in both arguments:

- ``k1``: ``ℓ − ℓ_ref`` (unbiased, high variance, can be negative)
- ``k2``: ``½ (ℓ − ℓ_ref)²``
- ``k3`` (verl's ``low_var_kl``; docs/method.md §2): ``d = clamp(ℓ_ref − ℓ, −20, 20)``,
  ``k3 = clamp(exp(d) − d − 1, −10, 10)`` (unbiased for KL(π‖π_ref) before clamping, always ≥ 0)
"""

from __future__ import annotations

import torch

from mssr.algos.masked import masked_mean
from mssr.algos.registry import Registry

KL_ESTIMATORS: Registry = Registry("KL estimator")


@KL_ESTIMATORS.register("k1")
def kl_k1(logprob: torch.Tensor, ref_logprob: torch.Tensor) -> torch.Tensor:
    return logprob - ref_logprob


@KL_ESTIMATORS.register("k2")
def kl_k2(logprob: torch.Tensor, ref_logprob: torch.Tensor) -> torch.Tensor:
    return 0.5 * (logprob - ref_logprob).square()


@KL_ESTIMATORS.register("k3")
def kl_k3(
    logprob: torch.Tensor,
    ref_logprob: torch.Tensor,
    *,
    log_ratio_clamp: float = 20.0,
    value_clamp: float = 10.0,
) -> torch.Tensor:
    d = torch.clamp(ref_logprob - logprob, -log_ratio_clamp, log_ratio_clamp)
    return torch.clamp(torch.exp(d) - d - 1.0, -value_clamp, value_clamp)


def kl_penalty(logprob: torch.Tensor, ref_logprob: torch.Tensor, estimator: str = "k3") -> torch.Tensor:
    """Per-token KL estimate with the named estimator (see module docstring)."""
    return KL_ESTIMATORS.get(estimator)(logprob, ref_logprob)


def per_sample_kl(
    logprob: torch.Tensor, ref_logprob: torch.Tensor, response_mask: torch.Tensor, estimator: str = "k3"
) -> torch.Tensor:
    """Token-mean KL of each response ``[B]`` — the ``kl_i`` of docs/method.md §2 (rollout policy vs π_ref)."""
    return masked_mean(kl_penalty(logprob, ref_logprob, estimator), response_mask, dim=-1)


def full_kl_from_logits(
    p_logits: torch.Tensor, q_logits: torch.Tensor, *, chunk_size: int = 1024
) -> torch.Tensor:
    """Exact per-position ``KL(p ‖ q) = Σ_v p(v) (log p(v) − log q(v))`` from logits ``[..., V]``, chunked so
    that only a ``chunk × V`` temporary exists at a time. Differentiable in both arguments."""
    if p_logits.shape != q_logits.shape:
        raise ValueError(f"logit shapes differ: {tuple(p_logits.shape)} vs {tuple(q_logits.shape)}")
    v = p_logits.shape[-1]
    p_flat, q_flat = p_logits.reshape(-1, v), q_logits.reshape(-1, v)
    out = []
    for s in range(0, p_flat.shape[0], chunk_size):
        lp = torch.log_softmax(p_flat[s : s + chunk_size].float(), -1)
        lq = torch.log_softmax(q_flat[s : s + chunk_size].float(), -1)
        out.append((lp.exp() * (lp - lq)).sum(-1))
    if not out:
        return p_logits.new_zeros(p_logits.shape[:-1], dtype=torch.float32)
    return torch.cat(out).reshape(p_logits.shape[:-1])

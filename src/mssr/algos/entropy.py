"""Per-token entropies (docs/method.md §4 and §6).

- ``sampled``: ``H_t = −p_t log p_t`` with ``p_t = exp(ℓ_t)`` of the *sampled* token (range [0, 1/e]).
- ``full``: the full-vocabulary entropy ``−Σ_v π(v) log π(v)`` at each position (Cheng et al.).
"""

from __future__ import annotations

import torch


def sampled_token_entropy(logprobs: torch.Tensor) -> torch.Tensor:
    """``−p log p`` of the sampled token from its log-prob ``ℓ``: ``−exp(ℓ) · ℓ``. Keeps the gradient
    of ``logprobs`` (the entropy-loss ablation, §6, needs it); detach for shaping."""
    return -torch.exp(logprobs) * logprobs


def entropy_from_logits(
    logits: torch.Tensor, *, chunk_size: int = 1024, temperature: float = 1.0
) -> torch.Tensor:
    """Full-vocabulary entropy ``logsumexp(z) − Σ softmax(z)·z`` over the last dim of ``logits [..., V]``.

    Processed in chunks of ``chunk_size`` rows so that at most one ``chunk × V`` float32 temporary exists
    at a time, never a second full ``B × T × V`` tensor. Differentiable.
    """
    if temperature != 1.0:
        logits = logits / temperature
    flat = logits.reshape(-1, logits.shape[-1])
    out = []
    for start in range(0, flat.shape[0], chunk_size):
        z = flat[start : start + chunk_size].float()
        lse = torch.logsumexp(z, dim=-1)
        p = torch.softmax(z, dim=-1)
        out.append(lse - (p * z).sum(-1))
    if not out:
        return logits.new_zeros(logits.shape[:-1], dtype=torch.float32)
    return torch.cat(out).reshape(logits.shape[:-1])

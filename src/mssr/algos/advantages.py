"""Advantage estimators (docs/method.md "Group-based baselines" and §3).

Every estimator has the same shape of signature::

    fn(rewards: Tensor[B], response_mask: Tensor[B, T], *, group_ids=None, baselines=None, **params)
        -> AdvantageOutput

``rewards`` holds one scalar outcome reward per response. ``group_ids`` identifies the prompt a response
came from (any integer labels; groups need not be contiguous). ``baselines`` is the per-response value
estimate v̂(x) of single-rollout methods. The result broadcasts the per-response advantage to every valid
response token. For data parallelism the caller gathers rewards (and baselines) from all ranks first, so
that statistics are global, then keeps its own rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mssr.algos.masked import masked_whiten
from mssr.algos.registry import Registry


@dataclass
class AdvantageOutput:
    """``advantages``: ``[B, T]`` (0 on padding); ``scores``: the per-response scalar ``[B]``."""

    advantages: torch.Tensor
    scores: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


ADVANTAGE_ESTIMATORS: Registry = Registry("advantage estimator")


def _broadcast(scores: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    return scores.unsqueeze(-1).to(
        response_mask.dtype if response_mask.is_floating_point() else torch.float32
    ) * (response_mask.to(torch.float32))


def _check(rewards: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [B], got shape {tuple(rewards.shape)}")
    if response_mask.dim() != 2 or response_mask.shape[0] != rewards.shape[0]:
        raise ValueError(
            f"response_mask must be [B, T] with B={rewards.shape[0]}, got {tuple(response_mask.shape)}"
        )
    if not torch.isfinite(rewards).all():
        raise ValueError("rewards contain NaN or inf; exclude failed rewards before computing advantages")
    return rewards.to(torch.float32)


def _groups(group_ids: torch.Tensor | None, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (inverse index into groups [B], group sizes [G])."""
    if group_ids is None:
        raise ValueError("this estimator needs group_ids (the prompt each response came from)")
    group_ids = torch.as_tensor(group_ids)
    if group_ids.shape != (n,):
        raise ValueError(f"group_ids must have shape [{n}], got {tuple(group_ids.shape)}")
    _, inverse, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    return inverse, counts


@ADVANTAGE_ESTIMATORS.register("grpo")
def grpo_advantage(
    rewards: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    group_ids: torch.Tensor | None = None,
    eps: float = 1e-6,
    unbiased: bool = True,
    scale_by_std: bool = True,
    allow_singleton: bool = False,
    **_: object,
) -> AdvantageOutput:
    """GRPO: ``A_i = (r_i − mean_g r) / (std_g r + eps)`` within each prompt's group.

    ``unbiased`` picks ddof=1 (GRPO/verl default) or ddof=0. ``scale_by_std=False`` is Dr.GRPO
    (``A_i = r_i − mean_g r``). A group of one response is an error unless ``allow_singleton``; then, as in
    verl, its mean is taken as 0 and its std as 1, so ``A = r``. A group whose rewards are all equal gets
    ``A = 0``; ``metrics["zero_std_frac"]`` is the fraction of such groups (wasted rollouts).
    """
    r = _check(rewards, response_mask)
    inverse, counts = _groups(group_ids, r.shape[0])
    n_groups = counts.shape[0]
    if (counts < 2).any() and not allow_singleton:
        raise ValueError(
            "GRPO needs at least 2 responses per prompt (found a group of 1); use a single-rollout "
            "algorithm (mssr/mvsr) for n=1, or pass allow_singleton=True"
        )
    sums = torch.zeros(n_groups, dtype=r.dtype).index_add_(0, inverse, r)
    means = sums / counts
    sq = torch.zeros(n_groups, dtype=r.dtype).index_add_(0, inverse, (r - means[inverse]) ** 2)
    ddof = 1 if unbiased else 0
    stds = torch.sqrt(sq / (counts - ddof).clamp(min=1))
    single = counts == 1
    means = torch.where(single, torch.zeros_like(means), means)
    stds = torch.where(single, torch.ones_like(stds), stds)
    scores = r - means[inverse]
    if scale_by_std:
        scores = scores / (stds[inverse] + eps)
    zero_std = ((sq == 0) & ~single).float()
    metrics = {"zero_std_frac": float(zero_std.mean()) if n_groups else 0.0, "n_groups": float(n_groups)}
    return AdvantageOutput(_broadcast(scores, response_mask), scores, metrics)


@ADVANTAGE_ESTIMATORS.register("rloo")
def rloo_advantage(
    rewards: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    group_ids: torch.Tensor | None = None,
    **_: object,
) -> AdvantageOutput:
    """RLOO: ``A_i = r_i − mean_{j≠i} r_j`` (leave-one-out baseline, no std scaling). Groups need ≥ 2."""
    r = _check(rewards, response_mask)
    inverse, counts = _groups(group_ids, r.shape[0])
    if (counts < 2).any():
        raise ValueError("RLOO needs at least 2 responses per prompt (found a group of 1)")
    sums = torch.zeros(counts.shape[0], dtype=r.dtype).index_add_(0, inverse, r)
    n = counts[inverse].to(r.dtype)
    scores = r - (sums[inverse] - r) / (n - 1)
    zero_std = torch.zeros(counts.shape[0]).index_add_(0, inverse, (scores != 0).float()) == 0
    return AdvantageOutput(
        _broadcast(scores, response_mask), scores, {"zero_std_frac": float(zero_std.float().mean())}
    )


@ADVANTAGE_ESTIMATORS.register("reinforce_pp")
def reinforce_pp_advantage(
    rewards: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    eps: float = 1e-8,
    unbiased: bool = True,
    **_: object,
) -> AdvantageOutput:
    """REINFORCE++ (baseline-free): the outcome reward broadcast to every valid token (γ = 1), then
    whitened over all valid tokens of the batch: ``(r − mean) / sqrt(var + eps)``.

    Matches verl's ``masked_whiten`` (token-weighted mean; ``unbiased=True`` is its Bessel-corrected
    variance). Longer responses weigh more in the statistics, by construction of token-level whitening.
    """
    r = _check(rewards, response_mask)
    mask = response_mask.to(torch.float32)
    returns = r.unsqueeze(-1) * mask
    adv = masked_whiten(returns, mask, eps=eps, unbiased=unbiased)
    scores = (adv * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
    return AdvantageOutput(adv, scores, {})


SINGLE_ROLLOUT_SCALES = ("unit", "signal")


@ADVANTAGE_ESTIMATORS.register("single_rollout")
def single_rollout_advantage(
    rewards: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    baselines: torch.Tensor | None = None,
    var_floor: float = 1e-6,
    unbiased: bool = False,
    normalize: bool = True,
    scale: str = "unit",
    zero_uniform: bool = False,
    **_: object,
) -> AdvantageOutput:
    """Single-rollout advantage (docs/method.md §3): ``A_i = r_i − v̂(x_i)``, normalised over the whole batch
    ``Â_i = (A_i − mean_j A_j) / σ_A`` with ``σ_A = sqrt(max(Var_j A_j, var_floor))``, biased variance (ddof=0).

    ``baselines`` are the tracker's posterior means *before* this step's update.

    Two opt-in variants of ours (docs/algorithms.md "Signal-scaled advantages"), for the regime study:

    - ``zero_uniform``: a batch whose rewards are all equal carries no learning signal; its advantages are 0
      (GRPO's rule for a uniform group, applied to the whole single-rollout batch).
    - ``scale="signal"``: ``Â_i = (A_i − mean_j A_j) / σ_A · min(1, σ_r / σ_A)`` with ``σ_r`` the batch's
      reward std (ddof as for ``σ_A``). Unit spread is kept while the baseline explains part of the reward
      (σ_A ≤ σ_r); a stale baseline that adds spread the rewards do not have (σ_A > σ_r) is scaled down, and a
      batch of equal rewards (σ_r = 0) gets 0 — so it implies ``zero_uniform``.
    """
    r = _check(rewards, response_mask)
    if baselines is None:
        raise ValueError("single_rollout advantage needs baselines (the value tracker's v̂ per response)")
    if scale not in SINGLE_ROLLOUT_SCALES:
        raise ValueError(f"scale must be one of {SINGLE_ROLLOUT_SCALES}, got {scale!r}")
    b = torch.as_tensor(baselines, dtype=r.dtype)
    if b.shape != r.shape:
        raise ValueError(f"baselines must have shape {tuple(r.shape)}, got {tuple(b.shape)}")
    raw = r - b
    scores = raw
    metrics: dict[str, float] = {}
    if normalize and raw.numel() > 0:
        ddof = 1 if unbiased and raw.numel() > 1 else 0
        var = ((raw - raw.mean()) ** 2).sum() / (raw.numel() - ddof)
        sigma_a = torch.sqrt(torch.clamp(var, min=var_floor))
        scores = (raw - raw.mean()) / sigma_a
        if scale == "signal":
            sigma_r = torch.sqrt(((r - r.mean()) ** 2).sum() / (r.numel() - ddof))
            gain = torch.clamp(sigma_r / sigma_a, max=1.0)
            scores = scores * gain
            metrics["signal_gain"] = float(gain)
    if zero_uniform and raw.numel() > 0:
        uniform = bool((r == r[0]).all())
        if uniform:
            scores = torch.zeros_like(scores)
        metrics["uniform_batch"] = float(uniform)
    metrics = {
        "raw_adv_mean": float(raw.mean()) if raw.numel() else 0.0,
        "raw_adv_std": float(raw.std(unbiased=False)) if raw.numel() else 0.0,
        "baseline_mean": float(b.mean()) if b.numel() else 0.0,
        **metrics,
    }
    return AdvantageOutput(_broadcast(scores, response_mask), scores, metrics)


def compute_advantages(
    name: str, rewards: torch.Tensor, response_mask: torch.Tensor, **kwargs
) -> AdvantageOutput:
    """Look up estimator ``name`` in :data:`ADVANTAGE_ESTIMATORS` and apply it."""
    return ADVANTAGE_ESTIMATORS.get(name)(rewards, response_mask, **kwargs)

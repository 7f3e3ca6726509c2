"""The full training objective of one micro-batch: policy loss + KL loss − entropy bonus + cross-modal KL.

``L = L_pg(ℓ, ℓ_old, Â) + β_KL · KL(π_θ ‖ π_ref) − c_H · H̃(π_θ) + c_X · KL(π(·|x∖img) ‖ π(·|x))``

with every term aggregated by the same mode and global normalisers (docs/method.md §5–§6): ``L_pg`` a
registered policy loss (:data:`mssr.algos.losses.POLICY_LOSSES`, PPO clip-higher + dual clip by default),
``KL`` a registered per-token estimator (k3 by default), ``H̃`` the sampled-token entropy, and the cross-modal
term computed through both forwards. A term whose weight is 0 is not computed (its inputs may be ``None``).

With a rollout engine whose probabilities differ from the trainer's (vLLM, bf16 kernels), the policy-gradient
term can carry truncated importance weights ``w_t = min(π_old(o_t)/π_sampler(o_t), C)`` (Yao et al. 2025, "Your
efficient RL framework secretly brings you off-policy RL training"; verl's ``tis_imp_ratio_cap``): the tokens were
drawn from π_sampler, the ratio is taken against π_old, and ``w_t`` re-weights the sample towards π_old.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mssr.algos.losses import LossOutput, cross_modal_kl_loss, entropy_loss, kl_loss, policy_loss


@dataclass(frozen=True)
class ObjectiveWeights:
    """Weights of the objective's terms and the policy loss's settings."""

    kl_coef: float = 0.0
    entropy_coef: float = 0.0
    crossmodal_coef: float = 0.0
    kl_estimator: str = "k3"
    policy_loss: str = "ppo_clip"
    clip_low: float = 0.2
    clip_high: float = 0.3
    dual_clip_c: float | None = 3.0


def rl_objective(
    logprob: torch.Tensor,
    old_logprob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    weights: ObjectiveWeights,
    *,
    ref_logprob: torch.Tensor | None = None,
    logprob_text: torch.Tensor | None = None,
    agg_mode: str = "token-mean",
    global_tokens: float | torch.Tensor | None = None,
    global_seqs: float | torch.Tensor | None = None,
    horizon: float | None = None,
    is_weights: torch.Tensor | None = None,
) -> LossOutput:
    """The micro-batch loss and its terms.

    Args:
        logprob: ``[B, T]`` ℓ_t under the current policy (with gradient).
        old_logprob: ``[B, T]`` ℓ_t under the policy that sampled.
        advantages: ``[B, T]`` per-token advantages (after shaping).
        response_mask: ``[B, T]`` 1 on tokens in the loss.
        weights: the terms' weights and the policy loss settings.
        ref_logprob: ``[B, T]`` ℓ_t under the reference policy; needed when ``weights.kl_coef > 0``.
        logprob_text: ``[B, T]`` ℓ_t with the images removed (with gradient); needed when
            ``weights.crossmodal_coef > 0``.
        agg_mode, global_tokens, global_seqs, horizon: loss aggregation (:func:`mssr.algos.losses.agg_loss`).
        is_weights: ``[B, T]`` non-negative per-token importance weights (:func:`truncated_is_weights`) of the
            policy-gradient term only; they multiply the advantages, which for ``ppo_clip`` (positively
            homogeneous in Â, dual clip included) equals weighting its per-token loss. ``None``: all 1.

    Returns:
        ``LossOutput`` whose metrics are ``actor/pg_loss``, ``actor/kl_loss``, ``actor/entropy_loss``,
        ``actor/crossmodal_kl`` (each present when its term is) and the policy loss's own statistics
        (``actor/pg_clipfrac``, ``actor/pg_clipfrac_lower``, ``actor/ppo_kl``).
    """
    norm = dict(agg_mode=agg_mode, global_tokens=global_tokens, global_seqs=global_seqs, horizon=horizon)
    w = weights
    if is_weights is not None:
        advantages = advantages * is_weights.detach()
    pg = policy_loss(
        w.policy_loss,
        logprob,
        old_logprob,
        advantages,
        response_mask,
        clip_low=w.clip_low,
        clip_high=w.clip_high,
        dual_clip_c=w.dual_clip_c,
        **norm,
    )
    loss = pg.loss
    metrics = {f"actor/{k}": v for k, v in pg.metrics.items()}
    if w.kl_coef > 0:
        if ref_logprob is None:
            raise ValueError("kl_coef > 0 needs ref_logprob")
        kl = kl_loss(logprob, ref_logprob, response_mask, estimator=w.kl_estimator, **norm)
        loss = loss + w.kl_coef * kl
        metrics["actor/kl_loss"] = _logged(
            kl_loss, logprob, ref_logprob, response_mask, estimator=w.kl_estimator, **norm
        )
    if w.entropy_coef > 0:
        ent = entropy_loss(logprob, response_mask, **norm)
        loss = loss - w.entropy_coef * ent
        metrics["actor/entropy_loss"] = _logged(entropy_loss, logprob, response_mask, **norm)
    if w.crossmodal_coef > 0:
        if logprob_text is None:
            raise ValueError("crossmodal_coef > 0 needs logprob_text")
        cm = cross_modal_kl_loss(logprob, logprob_text, response_mask, **norm)
        loss = loss + w.crossmodal_coef * cm
        metrics["actor/crossmodal_kl"] = _logged(
            cross_modal_kl_loss, logprob, logprob_text, response_mask, **norm
        )
    return LossOutput(loss, metrics)


def _logged(term, *tensors: torch.Tensor, **kwargs) -> float:
    """A loss term's logged value: the term over float64 copies of its inputs, so that the value summed over a
    mini-batch's micro-batches does not depend on how the mini-batch was split (float32 sums would)."""
    with torch.no_grad():
        return float(term(*(t.detach().double() for t in tensors), **kwargs))


def truncated_is_weights(
    old_logprob: torch.Tensor, sampler_logprob: torch.Tensor, response_mask: torch.Tensor, cap: float
) -> torch.Tensor:
    """Truncated importance weights ``w_t = min(exp(ℓ_old − ℓ_sampler), C)``, 0 off the mask (no gradient).

    ``ℓ_old`` is the trainer's log-prob of the sampled token before the update, ``ℓ_sampler`` the sampling
    engine's; ``C = cap`` ≥ 1 bounds the variance (Yao et al. 2025 use C = 2). The exponent is clamped to ±20
    like the PPO ratio's.
    """
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    log_w = torch.clamp(old_logprob.detach() - sampler_logprob.detach(), -20.0, 20.0)
    return torch.clamp(torch.exp(log_w), max=cap) * response_mask.to(old_logprob.dtype)

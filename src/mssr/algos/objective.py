"""The full training objective of one micro-batch: policy loss + KL loss − entropy bonus + cross-modal KL.

``L = L_pg(ℓ, ℓ_old, Â) + β_KL · KL(π_θ ‖ π_ref) − c_H · H̃(π_θ) + c_X · KL(π(·|x∖img) ‖ π(·|x))``

with every term aggregated by the same mode and global normalisers (docs/method.md §5–§6): ``L_pg`` a
registered policy loss (:data:`mssr.algos.losses.POLICY_LOSSES`, PPO clip-higher + dual clip by default),
``KL`` a registered per-token estimator (k3 by default), ``H̃`` the sampled-token entropy, and the cross-modal
term computed through both forwards. A term whose weight is 0 is not computed (its inputs may be ``None``).
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

    Returns:
        ``LossOutput`` whose metrics are ``actor/pg_loss``, ``actor/kl_loss``, ``actor/entropy_loss``,
        ``actor/crossmodal_kl`` (each present when its term is) and the policy loss's own statistics
        (``actor/pg_clipfrac``, ``actor/pg_clipfrac_lower``, ``actor/ppo_kl``).
    """
    norm = dict(agg_mode=agg_mode, global_tokens=global_tokens, global_seqs=global_seqs, horizon=horizon)
    w = weights
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
        metrics["actor/kl_loss"] = float(kl.detach())
    if w.entropy_coef > 0:
        ent = entropy_loss(logprob, response_mask, **norm)
        loss = loss - w.entropy_coef * ent
        metrics["actor/entropy_loss"] = float(ent.detach())
    if w.crossmodal_coef > 0:
        if logprob_text is None:
            raise ValueError("crossmodal_coef > 0 needs logprob_text")
        cm = cross_modal_kl_loss(logprob, logprob_text, response_mask, **norm)
        loss = loss + w.crossmodal_coef * cm
        metrics["actor/crossmodal_kl"] = float(cm.detach())
    return LossOutput(loss, metrics)

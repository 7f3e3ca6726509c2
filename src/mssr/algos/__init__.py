"""The algorithm core: pure torch functions and a few small state objects (imports only torch).

| docs/method.md | here |
|---|---|
| Group baselines (GRPO, RLOO, REINFORCE++) | :mod:`mssr.algos.advantages` |
| §1 Beta value tracker | :class:`mssr.algos.tracker.BetaTracker` |
| §2 ρ schedules, k3 KL | :mod:`mssr.algos.rho`, :mod:`mssr.algos.kl` |
| §3 single-rollout advantage | :func:`mssr.algos.advantages.single_rollout_advantage` |
| §4 entropy shaping | :mod:`mssr.algos.shaping`, :mod:`mssr.algos.entropy` |
| §5 policy loss, aggregation, KL loss | :mod:`mssr.algos.losses` |
| §6 entropy loss, cross-modal KL | :mod:`mssr.algos.losses` |
| defect 4: prioritised sampling | :mod:`mssr.algos.sampling` |
| prompt keys | :mod:`mssr.algos.keys` |
"""

from mssr.algos.advantages import ADVANTAGE_ESTIMATORS, AdvantageOutput, compute_advantages
from mssr.algos.entropy import entropy_from_logits, sampled_token_entropy
from mssr.algos.keys import prompt_key
from mssr.algos.kl import KL_ESTIMATORS, full_kl_from_logits, kl_penalty, per_sample_kl
from mssr.algos.losses import (
    AGG_MODES,
    POLICY_LOSSES,
    LossOutput,
    agg_loss,
    cross_modal_kl_loss,
    entropy_loss,
    kl_loss,
    policy_loss,
)
from mssr.algos.presets import ALGORITHMS, AlgorithmSpec
from mssr.algos.registry import Registry
from mssr.algos.rho import RHO_SCHEDULES, ResponseStore, build_rho_schedule, policy_drift, spo_rho
from mssr.algos.sampling import PromptSampler, spo_priority_weights
from mssr.algos.shaping import ShapingOutput, shape_advantages
from mssr.algos.shaping_drift import entropy_change, expected_shaping_logit_change
from mssr.algos.tracker import BetaTracker

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "AGG_MODES",
    "ALGORITHMS",
    "KL_ESTIMATORS",
    "POLICY_LOSSES",
    "RHO_SCHEDULES",
    "AdvantageOutput",
    "AlgorithmSpec",
    "BetaTracker",
    "LossOutput",
    "PromptSampler",
    "Registry",
    "ResponseStore",
    "ShapingOutput",
    "agg_loss",
    "build_rho_schedule",
    "compute_advantages",
    "cross_modal_kl_loss",
    "entropy_change",
    "entropy_from_logits",
    "entropy_loss",
    "expected_shaping_logit_change",
    "full_kl_from_logits",
    "kl_loss",
    "kl_penalty",
    "per_sample_kl",
    "policy_drift",
    "policy_loss",
    "prompt_key",
    "sampled_token_entropy",
    "shape_advantages",
    "spo_priority_weights",
    "spo_rho",
]

"""Rollout: (policy, prompts) -> responses with token ids, masks, log-probs and entropies.

`HFRolloutEngine` samples with transformers `generate` behind the `RolloutEngine` protocol;
`compute_logprobs` is the teacher-forced pass for old log-probs, entropies and the training forward.
"""

from mssr.rollout.batch import PromptInput, PromptStore, RolloutBatch
from mssr.rollout.engine import HFRolloutEngine, RolloutEngine, default_suppress_token_ids
from mssr.rollout.logprobs import (
    LogprobOutput,
    compute_logprobs,
    response_logits,
    sampled_token_entropy,
    token_stats,
)

__all__ = [
    "HFRolloutEngine",
    "LogprobOutput",
    "PromptInput",
    "PromptStore",
    "RolloutBatch",
    "RolloutEngine",
    "compute_logprobs",
    "default_suppress_token_ids",
    "response_logits",
    "sampled_token_entropy",
    "token_stats",
]

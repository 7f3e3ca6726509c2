"""Rollout: (policy, prompts) -> responses with token ids, masks, log-probs and entropies.

`HFRolloutEngine` (the policy's own modules) and `VLLMRolloutEngine` (a colocated vLLM with its own weights)
sample behind the `RolloutEngine` protocol, built from a config by `engine_from_config`;
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
from mssr.rollout.micro_batches import plan_micro_batches, row_lengths
from mssr.rollout.vllm_engine import VLLMRolloutEngine, build_engine, engine_from_config

__all__ = [
    "HFRolloutEngine",
    "LogprobOutput",
    "PromptInput",
    "PromptStore",
    "RolloutBatch",
    "RolloutEngine",
    "VLLMRolloutEngine",
    "build_engine",
    "compute_logprobs",
    "default_suppress_token_ids",
    "engine_from_config",
    "plan_micro_batches",
    "response_logits",
    "row_lengths",
    "sampled_token_entropy",
    "token_stats",
]

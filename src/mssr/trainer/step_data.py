"""What one training step hands from stage to stage (:class:`StepData`), and the small helpers every stage shares.

A stage (:mod:`mssr.trainer.stages`) is a function ``stage(tr, d, ...)`` over the run's parts ``tr`` (an
:class:`~mssr.trainer.trainer.RLTrainer`: its config, model, engine, optimizer, tracker, …) and this step's
``d``; it reads what earlier stages put in ``d`` and adds its own fields.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

# the run's parts a stage reads (an RLTrainer; typed loosely so that the stages do not import the trainer)
Parts = Any


def step_seed(seed: int, step: int, salt: int = 0) -> int:
    """A per-step seed independent of any global RNG state, so a resumed run samples identically."""
    return (seed * 1_000_003 + step * 9_176 + salt * 7_919) % (2**31 - 1)


@dataclass
class Gathered:
    """The step's rows from every rank, in rank order (identical on all ranks)."""

    keys: list[str]  # prompt keys
    rewards: torch.Tensor  # [N], 0 where excluded
    valid: torch.Tensor  # [N] bool
    groups: torch.Tensor  # [N] global prompt index (group id)
    lengths: torch.Tensor  # [N] tokens in the loss


@dataclass
class StepData:
    """Everything one step hands from stage to stage (this rank's rows unless said otherwise)."""

    batch: Any
    records: list[Any]
    prompt_ids: torch.Tensor  # [B] global index of each row's prompt in the training set
    rewards: torch.Tensor  # [B], 0 where excluded
    valid: torch.Tensor  # [B] bool: reward usable
    loss_mask: torch.Tensor  # [B, T]
    old_logprobs: torch.Tensor | None = None
    entropy: torch.Tensor | None = None  # the shaping entropy (sampled or full)
    sampled_entropy: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None
    drift: torch.Tensor | None = None  # [N] SPO's D(x) per gathered row (per_prompt ρ), NaN if unseen
    gathered: Gathered | None = None
    advantages: torch.Tensor | None = None
    unshaped_advantages: torch.Tensor | None = None  # Â before entropy shaping (the shaping probe's baseline)
    pass_plan: list[list[int]] | None = None  # micro-batches of the no-grad passes (optim.micro_batch_tokens)
    is_weights: torch.Tensor | None = None  # [B, T] truncated importance weights (rollout.tis_cap), else None


@contextlib.contextmanager
def timed(times: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall-clock seconds of the block to ``times[name]``."""
    t = time.perf_counter()
    try:
        yield
    finally:
        times[name] = times.get(name, 0.0) + time.perf_counter() - t

"""The one evaluation path: generate (greedy pass@1 by default) for records and grade with the verifier.

Training's periodic validation and ``mssr eval`` both call :func:`evaluate`, so the numbers agree.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mssr.rewards import build_reward, score_batch
from mssr.rollout.batch import PromptInput


@dataclass
class EvalResult:
    """``accuracy`` = mean verdict over items (an unverifiable/raising item counts as wrong)."""

    accuracy: float
    n: int
    correct: list[bool]
    responses: list[str]
    truncated: list[bool]
    metrics: dict[str, float] = field(default_factory=dict)


def evaluate(
    engine: Any,
    prompts: Sequence[PromptInput],
    records: Sequence[Any],
    *,
    reward: Any = "accuracy",
    greedy: bool = True,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    batch_size: int | None = 64,
    seed: int | None = 0,
    timeout_s: float = 5.0,
    num_workers: int = 0,
) -> EvalResult:
    """Generate one response per prompt and grade it (``reward`` is a spec or a built reward)."""
    if len(prompts) != len(records):
        raise ValueError(f"{len(prompts)} prompts but {len(records)} records")
    t0 = time.perf_counter()
    batch = engine.generate(
        list(prompts),
        n=1,
        greedy=greedy,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
    )
    t_gen = time.perf_counter() - t0
    fn = build_reward(reward) if isinstance(reward, (str, dict)) else reward
    scored = score_batch(
        fn,
        batch.response_text,
        [r.to_columns() for r in records],
        timeout_s=timeout_s,
        num_workers=num_workers,
    )
    correct = [s is not None and s > 0.5 for s in scored.scores]
    n = len(correct)
    lengths = batch.response_mask.sum(-1).float()
    return EvalResult(
        accuracy=sum(correct) / n if n else 0.0,
        n=n,
        correct=correct,
        responses=list(batch.response_text),
        truncated=[bool(t) for t in batch.truncated.tolist()],
        metrics={
            "response_length": float(lengths.mean()) if n else 0.0,
            "truncated_frac": float(batch.truncated.float().mean()) if n else 0.0,
            "reward_errors": float(scored.n_errors),
            "reward_timeouts": float(scored.n_timeouts),
            "time_s": time.perf_counter() - t0,
            "gen_time_s": t_gen,
        },
    )

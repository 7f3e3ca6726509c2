"""The one evaluation path: generate (greedy pass@1 by default, or n samples per item) for records and grade
every response with a reward through :func:`mssr.rewards.score_batch`.

Training's periodic validation (``RLTrainer.validate``) and ``mssr eval`` (:mod:`mssr.evaluation.runner`,
chunk by chunk) both call :func:`evaluate`, so the numbers agree.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mssr.evaluation.passk import mean_pass_at_k
from mssr.rewards import build_reward, score_batch
from mssr.rewards.runner import get_runner, is_picklable
from mssr.rewards.verify import MAX_RESPONSE_CHARS
from mssr.rollout.batch import PromptInput


@dataclass
class SampleResult:
    """One graded response. ``score`` is the reward (``None``: it raised or timed out, counted as wrong);
    ``extracted``/``reason`` are the verifier's reading of it (see :func:`mssr.evaluation.grading.explain`)."""

    response: str
    correct: bool
    score: float | None
    truncated: bool
    n_tokens: int
    extracted: str | None = None
    reason: str | None = None


@dataclass
class ItemResult:
    """The n responses to one record. ``time_s`` is the call's generation + grading time shared out evenly
    over its items (generation is batched, so per-item time is not observable)."""

    id: str
    samples: list[SampleResult]
    time_s: float

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def c(self) -> int:
        return sum(s.correct for s in self.samples)


@dataclass
class EvalResult:
    """``accuracy`` = mean verdict over all responses (an unverifiable/raising response counts as wrong); with
    one response per item this is pass@1 = accuracy. ``correct``/``responses``/``truncated`` are per response,
    item-major (the n samples of item i are rows ``i*n … i*n+n-1``); ``n`` is their number. ``items`` groups
    them per record; ``pass_at`` holds pass@k for the requested k (:mod:`mssr.evaluation.passk`)."""

    accuracy: float
    n: int
    correct: list[bool]
    responses: list[str]
    truncated: list[bool]
    metrics: dict[str, float] = field(default_factory=dict)
    items: list[ItemResult] = field(default_factory=list)
    pass_at: dict[int, float] = field(default_factory=dict)


def _explain_one(reward: Any, response: str, record: dict[str, Any]) -> tuple[str | None, str | None]:
    from mssr.evaluation.grading import explain

    return explain(reward, response, record)


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
    max_response_chars: int | None = MAX_RESPONSE_CHARS,
    n: int = 1,
    top_k: int = 0,
    ks: Sequence[int] = (1,),
    explain: bool = False,
) -> EvalResult:
    """Generate ``n`` responses per prompt and grade them (``reward`` is a spec or a built reward).

    ``n > 1`` needs ``greedy=False`` (identical greedy samples would make pass@k meaningless). ``ks``: the k
    of pass@k to report (each ≤ n). ``explain``: also record each response's extracted answer and verdict
    reason (run under the same per-item deadline as the reward).
    """
    if len(prompts) != len(records):
        raise ValueError(f"{len(prompts)} prompts but {len(records)} records")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if greedy and n > 1:
        raise ValueError("n > 1 samples per item needs sampling (greedy=False): greedy samples are identical")
    bad_k = [k for k in ks if not 1 <= k <= n]
    if bad_k:
        raise ValueError(f"pass@k needs 1 <= k <= n={n}; got k={bad_k}")
    t0 = time.perf_counter()
    batch = engine.generate(
        list(prompts),
        n=n,
        greedy=greedy,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
    )
    t_gen = time.perf_counter() - t0
    fn = build_reward(reward) if isinstance(reward, str | dict) else reward
    columns = [r.to_columns() for r in records]
    row_columns = [columns[i] for i in range(len(columns)) for _ in range(n)]
    scored = score_batch(
        fn,
        batch.response_text,
        row_columns,
        timeout_s=timeout_s,
        num_workers=num_workers,
        max_response_chars=max_response_chars,
    )
    correct = [s is not None and s > 0.5 for s in scored.scores]
    total = len(correct)
    lengths = batch.response_mask.sum(-1).long().tolist()
    truncated = [bool(t) for t in batch.truncated.tolist()]
    notes: list[tuple[str | None, str | None]] = [(None, None)] * total
    if explain and total:
        keep = getattr(fn, "columns", None)
        slim = [
            {k: v for k, v in c.items() if k != "images" and (keep is None or k in keep or k == "id")}
            for c in row_columns
        ]
        runner = get_runner(num_workers if is_picklable(fn) else 0)
        outcomes = runner.run(
            _explain_one, [(fn, r, c) for r, c in zip(batch.response_text, slim, strict=True)], timeout_s
        )
        notes = [
            o.value if o.error is None and not o.timed_out else (None, "timeout" if o.timed_out else "error")
            for o in outcomes
        ]
    elapsed = time.perf_counter() - t0
    per_item = elapsed / len(records) if records else 0.0
    items = []
    for i, rec in enumerate(records):
        samples = [
            SampleResult(
                response=batch.response_text[j],
                correct=correct[j],
                score=scored.scores[j],
                truncated=truncated[j],
                n_tokens=int(lengths[j]),
                extracted=notes[j][0],
                reason=notes[j][1],
            )
            for j in range(i * n, (i + 1) * n)
        ]
        items.append(ItemResult(id=str(getattr(rec, "id", i)), samples=samples, time_s=per_item))
    counts = [(it.n, it.c) for it in items]
    return EvalResult(
        accuracy=sum(correct) / total if total else 0.0,
        n=total,
        correct=correct,
        responses=list(batch.response_text),
        truncated=truncated,
        metrics={
            "response_length": sum(lengths) / total if total else 0.0,
            "truncated_frac": sum(truncated) / total if total else 0.0,
            "reward_errors": float(scored.n_errors),
            "reward_timeouts": float(scored.n_timeouts),
            "time_s": elapsed,
            "gen_time_s": t_gen,
        },
        items=items,
        pass_at={k: mean_pass_at_k(counts, k) for k in ks},
    )

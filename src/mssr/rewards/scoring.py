"""``score_batch``: a reward over a batch of responses, in parallel, with a deadline per response."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mssr.rewards.builtin import build_reward, split_value
from mssr.rewards.runner import Outcome, get_runner, is_picklable
from mssr.rewards.text import to_text

MAX_ERROR_MESSAGES = 5


class RewardRangeError(ValueError):
    """A reward outside [0, 1] where the consumer (the single-rollout Beta tracker) needs [0, 1]."""


@dataclass
class ScoreResult:
    """Rewards of one batch.

    ``scores[i]`` is ``None`` when response ``i`` is excluded: the reward raised, timed out, or returned
    ``None``. ``extras[key][i]`` holds the extra values of dict-valued rewards (``None`` where absent).
    ``errors`` keeps the first few messages ("item 3: ValueError: …"); ``backend`` says where it ran
    ("inline", "processes(2)", or "inline (reward not picklable)").
    """

    scores: list[float | None]
    extras: dict[str, list[float | None]] = field(default_factory=dict)
    n_errors: int = 0
    n_timeouts: int = 0
    errors: list[str] = field(default_factory=list)
    backend: str = "inline"
    # the first failure of each kind (exception type, "timeout", "bad value"): (message, traceback or "")
    first_failures: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def n_scored(self) -> int:
        return sum(s is not None for s in self.scores)


def _call(reward: Callable[..., Any], response: str, record: Mapping[str, Any]) -> Any:
    return reward(response, record)


def _project(record: Mapping[str, Any], columns: Sequence[str] | None) -> Mapping[str, Any]:
    if columns is None:
        return record
    return {k: record[k] for k in columns if k in record}


def score_batch(
    reward: Any,
    responses: Sequence[Any],
    records: Sequence[Mapping[str, Any]],
    *,
    timeout_s: float = 5.0,
    num_workers: int = 0,
    binarize_threshold: float | None = None,
    require_unit_interval: bool = False,
    max_response_chars: int | None = None,
) -> ScoreResult:
    """Score ``responses[i]`` against ``records[i]`` with ``reward`` (a spec or a built reward).

    * ``num_workers=0`` runs in-process on a persistent worker thread (cheap; timeouts interrupt Python code,
      see :mod:`mssr.rewards.runner`); ``num_workers>0`` uses a persistent pool of that many processes with
      hard timeouts. A reward that cannot be pickled (a lambda, a closure) always runs in-process, and
      ``backend`` says so.
    * Each response gets ``timeout_s`` seconds; an overrun is counted in ``n_timeouts`` and scored ``None``;
      an exception is counted in ``n_errors`` and scored ``None``. The batch always completes.
    * ``max_response_chars=n`` hands the reward only each response's last ``n`` characters (the final answer is
      at the end), bounding the work of any reward on a degenerate response; None: whole responses.
    * ``binarize_threshold=t`` maps each score to ``1.0 if score >= t else 0.0``. Otherwise, with
      ``require_unit_interval=True`` (the single-rollout Beta tracker), any score outside [0, 1] raises
      :class:`RewardRangeError` naming the first offending items.
    """
    if len(responses) != len(records):
        raise ValueError(f"score_batch got {len(responses)} responses but {len(records)} records")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    fn = build_reward(reward)
    columns = getattr(fn, "columns", None)
    texts = [to_text(r) for r in responses]
    if max_response_chars is not None:
        texts = [t[-max_response_chars:] if len(t) > max_response_chars else t for t in texts]
    items = [(fn, t, _project(rec, columns)) for t, rec in zip(texts, records)]
    backend = "inline"
    if num_workers > 0:
        if is_picklable(fn):
            backend = f"processes({num_workers})"
        else:
            backend = "inline (reward not picklable)"
            num_workers = 0
    outcomes = get_runner(num_workers).run(_call, items, timeout_s)
    return _collect(outcomes, timeout_s, binarize_threshold, require_unit_interval, backend)


def _collect(
    outcomes: Sequence[Outcome],
    timeout_s: float,
    binarize_threshold: float | None,
    require_unit_interval: bool,
    backend: str,
) -> ScoreResult:
    n = len(outcomes)
    res = ScoreResult(scores=[None] * n, backend=backend)

    def note(i: int, msg: str, kind: str, tb: str | None = None) -> None:
        if len(res.errors) < MAX_ERROR_MESSAGES:
            res.errors.append(f"item {i}: {msg}")
        res.first_failures.setdefault(kind, (f"item {i}: {msg}", tb or ""))

    for i, out in enumerate(outcomes):
        if out.timed_out:
            res.n_timeouts += 1
            note(i, f"timed out after {timeout_s:g} s", "timeout")
            continue
        if out.error is not None:
            res.n_errors += 1
            note(i, out.error, out.error.split(":", 1)[0], out.traceback)
            continue
        try:
            overall, extras = split_value(out.value)
        except (TypeError, ValueError) as exc:
            res.n_errors += 1
            note(i, f"{type(exc).__name__}: {exc}", "bad value")
            continue
        res.scores[i] = overall
        for k, v in extras.items():
            res.extras.setdefault(k, [None] * n)[i] = v
    if binarize_threshold is not None:
        t = float(binarize_threshold)
        res.scores = [None if s is None else (1.0 if s >= t else 0.0) for s in res.scores]
    elif require_unit_interval:
        bad = [
            (i, s)
            for i, s in enumerate(res.scores)
            if s is not None and not (0.0 <= s <= 1.0 and math.isfinite(s))
        ]
        if bad:
            shown = ", ".join(f"item {i} = {s!r}" for i, s in bad[:5])
            raise RewardRangeError(
                f"{len(bad)} reward(s) outside [0, 1] ({shown}); the single-rollout value tracker needs rewards "
                "in [0, 1]: rescale the reward or set a binarisation threshold (binarize_threshold)"
            )
    return res

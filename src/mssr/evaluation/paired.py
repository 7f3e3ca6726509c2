"""Paired comparison of two evaluations on the same items: the mean per-item difference B − A with a bootstrap
interval over items (the same resampled items for both) and the share of resamples in which B beats A. Used by
docs/results/reasoning/paired_eval.py; a library function so that any comparison of two `mssr eval` outputs
reports the same statistic."""

from __future__ import annotations

import random


def paired_bootstrap(
    a: list[float], b: list[float], boot: int = 10_000, rng: random.Random | None = None, level: float = 0.95
) -> tuple[float, float, float, float]:
    """``(difference, low, high, share of resamples with B > A)`` of mean(b) − mean(a) over paired items;
    ``[low, high]`` is the percentile interval at ``level``."""
    if len(a) != len(b) or not a:
        raise ValueError(
            f"need two equally long, non-empty lists of per-item scores, got {len(a)} and {len(b)}"
        )
    rng = rng or random.Random(0)
    n = len(a)
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    mean = sum(diffs) / n
    stats = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(boot))
    tail = (1 - level) / 2
    lo, hi = stats[int(tail * boot)], stats[min(boot - 1, int((1 - tail) * boot))]
    return mean, lo, hi, sum(s > 0 for s in stats) / boot

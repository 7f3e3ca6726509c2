"""pass@k: the probability that at least one of k responses is correct, estimated from n ≥ k samples.

With c correct among n samples of one item, the unbiased estimator (Chen et al., 2021, "Evaluating Large
Language Models Trained on Code") is ``1 − C(n−c, k) / C(n, k)``; a benchmark's pass@k is its mean over
items. pass@1 reduces to c/n, so greedy decoding (n = 1) gives plain accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def pass_at_k(n: int, c: int, k: int) -> float:
    """``1 − C(n−c, k)/C(n, k)`` for one item, computed as ``1 − Π_{i=n−c+1}^{n} (1 − k/i)`` (no big integers).

    Raises ``ValueError`` unless ``0 ≤ c ≤ n`` and ``1 ≤ k ≤ n``.
    """
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and n >= 1, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n (n={n} samples per item)")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float:
    """The benchmark's pass@k: the mean of :func:`pass_at_k` over ``(n, c)`` pairs (0.0 for no items)."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    return sum(values) / len(values) if values else 0.0

"""pass@k against its closed form 1 − C(n−c, k)/C(n, k), on hand-made counts and at random."""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import comb

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mssr.evaluation.passk import mean_pass_at_k, pass_at_k


def closed_form(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(comb(n - c, k), comb(n, k))


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 0, 1, 0.0),
        (1, 1, 1, 1.0),
        (5, 2, 1, 0.4),  # pass@1 = c/n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (5, 2, 4, 1.0),  # n - c < k: every 4-subset holds a correct sample
        (8, 1, 4, 0.5),  # 1 - C(7,4)/C(8,4) = 1 - 35/70
        (10, 3, 5, 1 - 21 / 252),
        (16, 0, 8, 0.0),
    ],
)
def test_hand_made_counts(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert pass_at_k(n, c, k) == pytest.approx(float(closed_form(n, c, k)), abs=1e-12)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_equals_closed_form(args):
    n, c, k = args
    assert pass_at_k(n, c, k) == pytest.approx(float(closed_form(n, c, k)), abs=1e-9)


@given(st.integers(2, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_monotone_in_k_and_pass1_is_fraction_correct(args):
    n, c = args
    values = [pass_at_k(n, c, k) for k in range(1, n + 1)]
    assert values[0] == pytest.approx(c / n)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(values))
    assert values[-1] == (1.0 if c else 0.0)


def test_mean_over_items_and_errors():
    counts = [(4, 0), (4, 1), (4, 4)]
    assert mean_pass_at_k(counts, 2) == pytest.approx((0 + 0.5 + 1) / 3)  # 1 - C(3,2)/C(4,2) = 0.5
    assert mean_pass_at_k([], 1) == 0.0
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)

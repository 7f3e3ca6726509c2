"""verify() in strict and official mode on real-looking responses."""

from __future__ import annotations

import time

import pytest

from mssr.rewards import Verdict, verify

CH = ["97", "102", "107", "122"]


@pytest.mark.parametrize(
    ("response", "answer", "kwargs", "correct", "reason"),
    [
        (r"<think>…</think> The angle is $\boxed{107}$.", "107", {"choices": CH}, True, "match"),
        (r"Thus \boxed{C}", "107", {"choices": CH}, True, "match"),  # letter -> text
        (r"Thus \boxed{107}", "C", {"choices": CH}, True, "match"),  # text -> gold letter
        ("The answer is (B) 102.", "107", {"choices": CH}, False, "mismatch"),
        ("It cannot be determined from the figure.", "107", {"choices": CH}, False, "refusal"),
        ("The answer is 250 grams.", "250", {"answer_type": "integer"}, True, "match"),
        ("The answer is 14.0 cm", "14", {"answer_type": "integer"}, True, "match"),
        ("so the rate is 45%", "45", {"answer_type": "integer"}, True, "match"),
        (r"\boxed{1,000}", "1000", {"answer_type": "integer"}, True, "match"),
        (
            "d = 0.11 m. Therefore, the answer is 0.11",
            "1.2",
            {"answer_type": "float", "precision": 1},
            False,
            "mismatch",
        ),
        (r"\boxed{1.23}", "1.2", {"answer_type": "float", "precision": 1}, True, "match"),
        (r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt3}{2}", {}, True, "match"),
        (r"\boxed{2+3}", "5", {}, True, "match"),
        (r"\boxed{[2007, 2008]}", "[2007, 2008]", {"answer_type": "list"}, True, "match"),
        (r"\boxed{Yes}", "yes", {}, True, "match"),
        ("no answer here at all", "5", {"answer_type": "integer"}, False, "no_answer"),
        (r"\boxed{10^{10^{10}}}", "5", {}, False, "unverifiable"),
    ],
)
def test_strict(response, answer, kwargs, correct, reason) -> None:
    v = verify(response, answer, mode="strict", **kwargs)
    assert isinstance(v, Verdict)
    assert (v.correct, v.reason) == (correct, reason), v


def test_strict_refuses_what_official_rewards() -> None:
    # a refusal is mapped to the nearest option by MathVista's scorer, and may land on the right one
    resp = "N/A"
    assert verify(resp, "No", choices=["Yes", "No"], mode="official").correct
    assert not verify(resp, "No", choices=["Yes", "No"], mode="strict").correct
    # an integer answer written as a decimal: wrong for MathVista's published scorer, right for strict
    assert not verify("The answer is 14.0", "14", answer_type="integer", mode="official").correct
    assert verify("The answer is 14.0", "14", answer_type="integer", mode="strict").correct


@pytest.mark.parametrize(
    ("response", "answer", "kwargs", "correct", "extracted"),
    [
        ("The answer is (C) 107.", "107", {"choices": CH}, True, "C"),
        ("107", "107", {"choices": CH}, True, "107"),
        ("Sorry, I can't help with images of people yet.", "Yes", {"choices": ["Yes", "No"]}, True, None),
        ("The answer is 250.", "250", {"answer_type": "integer"}, True, "250"),
        ("So the total is 10 - 2 - 3 = 5 objects", "5", {"answer_type": "integer"}, True, "5"),
        ("x ≈ 1.16, so the answer is 1.16", "1.2", {"answer_type": "float", "precision": 1}, True, "1.16"),
        ("The answer is [1, 2]", "[1, 2]", {"answer_type": "list"}, True, "[1, 2]"),
    ],
)
def test_official(response, answer, kwargs, correct, extracted) -> None:
    v = verify(response, answer, mode="official", **kwargs)
    assert v.correct is correct
    if extracted is not None:
        assert v.extracted == extracted


def test_require_clean_end() -> None:
    good = r"<think>4+4</think> The answer is $\boxed{8}$.<|im_end|>"
    padded = r"<think>4+4</think> The answer is $\boxed{8}$. blah blah 8 8 8"
    assert verify(good, "8", require_clean_end=True).correct
    v = verify(padded, "8", require_clean_end=True)
    assert (v.correct, v.reason) == (False, "unclean_end")
    assert verify(padded, "8").correct  # without the option the junk is ignored
    assert not verify("The answer is 8", "8", require_clean_end=True).correct  # not delimited
    assert verify("<answer>8</answer>\n", "8", require_clean_end=True).correct


def test_bad_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        verify("x", "y", mode="lenient")


@pytest.mark.parametrize(
    "response",
    [
        r"\boxed{" + "{" * 50_000 + "}" * 50_000 + "}",
        r"\boxed{9^{9^{9^{9}}}}",
        r"\boxed{(" + "(" * 400 + "1" + ")" * 401 + "}",
        "x" * 10_000 + r"\boxed{1}",
        ("The answer is " + "1" * 9000),
        b"\xff\xfe\\boxed{3}\xc3",
        "\ud800 lone surrogate \\boxed{3}",
    ],
)
def test_adversarial_responses_do_not_hang_or_crash(response) -> None:
    for mode in ("strict", "official"):
        for kw in ({}, {"choices": CH}, {"answer_type": "integer"}, {"answer_type": "float", "precision": 1}):
            t = time.perf_counter()
            v = verify(response, "3", mode=mode, **kw)
            assert isinstance(v.correct, bool)
            assert time.perf_counter() - t < 2.0

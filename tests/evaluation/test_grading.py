"""BenchmarkReward's conventions and the diagnostics written per response."""

from __future__ import annotations

import pickle

import pytest

from mssr.evaluation import BenchmarkReward, explain
from mssr.rewards import build_reward


def rec(answer, grading=None, **kw):
    return {"answer": answer, "grading": grading, "answer_type": kw.pop("answer_type", "text"), **kw}


@pytest.mark.parametrize(
    ("response", "record", "expected"),
    [
        (r"\boxed{B}", rec("B", "choice", choices=["x", "y"], answer_type="choice"), 1.0),
        (r"\boxed{y}", rec("B", "choice", choices=["x", "y"], answer_type="choice"), 1.0),
        (r"\boxed{(B) y}", rec("B", "choice", choices=["x", "y"], answer_type="choice"), 1.0),
        (r"\boxed{x}", rec("B", "choice", choices=["x", "y"], answer_type="choice"), 0.0),
        (r"\boxed{B}", rec("B", "choice"), 1.0),  # options only in the image
        (r"\boxed{b}", rec("B", "choice"), 1.0),  # a lone lower-case letter names the option (rewards.md)
        (r"\boxed{B}", rec("A", "choice", choices=["B", "C"], answer_type="choice"), 0.0),  # B = option B
        ("The answer is B.", rec("B", "choice"), 1.0),
        (r"\boxed{B, D}", rec("B, D", "letters"), 1.0),
        (r"\boxed{D and B}", rec("B, D", "letters"), 1.0),
        (r"\boxed{BD}", rec("B, D", "letters"), 0.0),
        (r"\boxed{B}", rec("B, D", "letters"), 0.0),
        (r"\boxed{Yes}", rec("Yes", "yesno"), 1.0),
        ("No, the bars are not equal.", rec("No", "yesno"), 1.0),
        (r"\boxed{No}", rec("Yes", "yesno"), 0.0),
        (r"\boxed{maybe}", rec("Yes", "yesno"), 0.0),
        (r"\boxed{0.5}", rec("\\frac{1}{2}", "free"), 1.0),
        (r"\boxed{3.14}", rec("3.1", "free", verify_type="float", precision=1), 1.0),
        (r"\boxed{3.2}", rec("3.1", "free", verify_type="float", precision=1), 0.0),
    ],
)
def test_conventions(response, record, expected):
    assert BenchmarkReward()(response, record) == expected


def test_require_delimited_and_clean_end():
    r = rec("B", "choice")
    assert BenchmarkReward(require_delimited=True)("The answer is B.", r) == 0.0
    assert BenchmarkReward(require_delimited=True)(r"so \boxed{B}", r) == 1.0
    assert BenchmarkReward(require_clean_end=True)(r"\boxed{B} and then junk", r) == 0.0
    assert BenchmarkReward(require_clean_end=True)(r"\boxed{Yes} junk", rec("Yes", "yesno")) == 0.0


def test_explain_reports_extraction_and_reason():
    reward = BenchmarkReward()
    assert explain(reward, r"\boxed{C}", rec("B", "choice")) == ("C", "mismatch")
    assert explain(reward, "I'm sorry, I cannot tell.", rec("Yes", "yesno"))[1] == "refusal"
    acc = build_reward("accuracy", require_clean_end=True)
    assert explain(acc, "4", rec("4", answer_type="integer")) == (None, "not_delimited")
    assert explain(acc, r"\boxed{4} x", rec("4", answer_type="integer")) == ("4", "unclean_end")
    assert explain(lambda r, c: 1.0, r"\boxed{4}", rec("4")) == ("4", None)  # custom reward: extraction only


def test_reward_pickles_for_worker_processes():
    r = pickle.loads(pickle.dumps(BenchmarkReward(mode="official", require_delimited=True)))
    assert (r.mode, r.require_delimited) == ("official", True)
    with pytest.raises(ValueError, match="mode"):
        BenchmarkReward(mode="lenient")

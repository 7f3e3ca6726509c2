"""Grading stays bounded on degenerate responses, so in-process deadlines hold (issue 26, class 2): every
extraction path is linear and the verifier reads a response's last MAX_RESPONSE_CHARS characters."""

from __future__ import annotations

import random
import re
import time

from mssr.rewards import score_batch
from mssr.rewards.extract import answer_tags
from mssr.rewards.official_rules import strip_question_echo
from mssr.rewards.pathological import pathological_responses
from mssr.rewards.verify import MAX_RESPONSE_CHARS, verify


def test_answer_tags_equal_the_lazy_regex_on_tag_soups():
    lazy = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
    rng = random.Random(0)
    parts = ["<answer>", "</answer>", "<ANSWER>", "</Answer>", "x", "\n", "5", "<answer", "answer>", "İ"]
    for _ in range(5000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 12)))
        assert answer_tags(text) == [(m.group(1), m.start(), m.end()) for m in lazy.finditer(text)], text


def test_question_echo_stripping_finds_the_same_prompt_lines():
    old = re.compile(r"(?mi)^\s*(?:hint|question|choices|options)\s*[:：]")
    rng = random.Random(1)
    parts = ["Hint:", "question :", "Choices", ":", "\n", " ", "\t", "x", "\r\n", "(A) 3"]
    for _ in range(3000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 10)))
        expect = text if not old.search(text) else None
        got = strip_question_echo(text, None, None)
        if expect is not None:  # no prompt line found by the old pattern: unchanged by the new one either
            assert got == text, repr(text)


def test_in_process_deadlines_hold_on_degenerate_responses():
    items = pathological_responses((1_000, 100_000, 10_000_000))
    responses = [r for _, r, _, _ in items]
    records = [{"answer": gold} for _, _, gold, _ in items]
    t = time.perf_counter()
    res = score_batch("accuracy", responses, records, timeout_s=1.0, num_workers=0, max_response_chars=32768)
    elapsed = time.perf_counter() - t
    assert res.n_timeouts == 0 and res.n_errors == 0, [
        n for (n, *_), s in zip(items, res.scores) if s is None
    ]
    for (name, response, _, _), score in zip(items, res.scores):
        box = response.rfind("\\boxed{5}")
        if box >= 0 and box >= len(response) - 32768:  # a final \boxed{5} in the graded tail is right
            assert score == 1.0, name
    # each item within its 1 s deadline; all of them together, generously, within the sum of the deadlines
    assert elapsed < len(items) * 1.0, elapsed


def test_a_huge_response_is_graded_on_its_tail():
    huge = "x " * 5_000_000 + "so the answer is \\boxed{7}"
    assert verify(huge, "7").correct
    assert verify(huge, "7") == verify(huge[-MAX_RESPONSE_CHARS:], "7")
    assert not verify("\\boxed{7}" + " x" * 5_000_000, "7").correct  # the box is past the graded tail
    assert verify("\\boxed{7}" + " x" * 5_000_000, "7", max_chars=None).correct is not None

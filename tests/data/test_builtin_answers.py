"""Every family's answers, recomputed from the scene by an independent solver that reads the question text."""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mssr.data.builtin import DIFFICULTIES, FAMILIES, iter_items, make_item

from .independent import parse_choices, solve, triangle_angles


def check_item(item) -> None:
    expected = solve(item.question, item.scene)
    if item.answer_type == "choice":
        choices = parse_choices(item.question)
        assert choices == item.choices, "choices in the text differ from the choices column"
        assert len(set(choices)) == 4 and choices.count(expected) == 1
        assert item.answer == "ABCD"[choices.index(expected)]
    else:
        assert parse_choices(item.question) is None and item.choices is None
        assert item.answer == expected
        if item.answer_type == "integer":
            int(item.answer)
        else:
            assert item.answer_type == "text" and item.answer.isalpha()
    # worked solution: <think>steps</think> \boxed{answer}, short, and its arithmetic checks out
    m = re.fullmatch(r"<think>(.+)</think> \\boxed\{(.+)\}", item.solution)
    assert m, item.solution
    assert m[2] == item.answer
    assert len(m[1].split()) <= 40
    for lhs, rhs in re.findall(r"((?:\d+ [-+*] )+\d+) = (\d+)", m[1]):
        assert eval(lhs) == int(rhs), m[1]  # digits and + - * only (regex above)
    if item.family == "counting":
        assert item.scene["objects"], "empty image"
    # the scene is plain JSON and round-trips exactly
    assert json.loads(json.dumps(item.scene)) == item.scene


def test_every_family_template_and_difficulty_is_covered_and_correct():
    seen = set()
    for _, item in iter_items("t", 1200, seed=3, difficulty="mixed", mc_fraction=0.5):
        check_item(item)
        seen.add((item.family, item.difficulty, item.template, item.answer_type == "choice"))
    expected = {
        (f, d, t, mc)
        for f, fam in FAMILIES.items()
        for d in DIFFICULTIES
        for t in fam.templates[d]
        for mc in (False, True)
    }
    assert seen == expected


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    family=st.sampled_from(sorted(FAMILIES)),
    difficulty=st.sampled_from(DIFFICULTIES),
    mc=st.booleans(),
)
def test_random_items_are_correct(seed, family, difficulty, mc):
    check_item(make_item("x", random.Random(seed), family, difficulty, mc))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_triangles_are_drawn_to_scale(difficulty):
    for k in range(40):
        item = make_item("x", random.Random(k), "geometry", difficulty, False)
        a, b = item.scene["angles"]
        measured = triangle_angles(item.scene["vertices"])
        assert measured == pytest.approx([a, b, 180 - a - b], abs=0.1)
        if item.template == "right_angle":
            assert 90 in (a, b)


def test_answers_are_roughly_uniform_within_a_template():
    """Answers are sampled first, so no answer value dominates a template (the text cannot favour one)."""
    by_group: dict[tuple, list[str]] = {}
    for _, item in iter_items("u", 2000, seed=1, families=["counting", "bars"], difficulty="easy"):
        by_group.setdefault((item.family, item.template), []).append(item.answer)
    for group, answers in by_group.items():
        counts = {a: answers.count(a) for a in set(answers)}
        share = max(counts.values()) / len(answers)
        assert share < 2.2 / len(counts), (group, counts)


def test_bad_family_or_difficulty_is_rejected():
    with pytest.raises(ValueError, match="unknown family"):
        make_item("x", random.Random(0), "poetry", "easy", False)
    with pytest.raises(ValueError, match="unknown difficulty"):
        make_item("x", random.Random(0), "bars", "extreme", False)

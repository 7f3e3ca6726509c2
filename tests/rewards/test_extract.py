"""Extraction rules on real-looking responses, plus adversarial inputs that must neither hang nor crash."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mssr.rewards.extract import answer_statements, extract_answer, last_boxed, letter_of

CHOICES = ["97", "102", "107", "122"]


@pytest.mark.parametrize(
    ("response", "expected", "source"),
    [
        (r"so $x = \boxed{\frac{1}{2}}$.", r"\frac{1}{2}", "boxed"),
        (r"first \boxed{3}, then corrected: \boxed{4}", "4", "boxed"),
        (r"\boxed{\left\{ 1, 2 \right\}}", r"\{ 1, 2 \}", "boxed"),
        (r"nested \boxed{a_{b_{c}} + \sqrt{\frac{x}{y}}} end", r"a_{b_{c}} + \sqrt{\frac{x}{y}}", "boxed"),
        (r"\fbox{7}", "7", "boxed"),
        (r"The result is \boxed 5", "5", "boxed"),
        (r"<think>2+2</think><answer>4</answer>", "4", "answer_tag"),
        (r"<think>…</think><answer>\boxed{12}</answer>", "12", "answer_tag"),
        ("Adding them up we get 12 apples.\nTherefore, the answer is 12.", "12", "phrase"),
        ("Final answer: **3.5 cm**", "3.5 cm", "phrase"),
        ("The answer is: 42", "42", "phrase"),
        ("所以，∠BCH的大小为30°，选项为C。", "C", "phrase"),
        ("So the difference is 41 - 11 = **30** percentage points.", "30", "bold"),
        ("Therefore, there are 0 objects left.", "0", "conclusion"),
        ("We count 3, 4 and then 9", "9", "last_number"),
    ],
)
def test_extraction_sources(response: str, expected: str, source: str) -> None:
    ex = extract_answer(response, answer_type="integer" if source in ("conclusion", "last_number") else None)
    assert ex is not None
    assert (ex.text, ex.source) == (expected, source)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("The answer is (C) 107.", "C"),
        ("The correct answer is **(A) 97**.", "A"),
        ("B", "B"),
        ("(d)", "D"),
        ("B. 102", "B"),
        ("Answer: option b", "B"),
        ("Therefore, the answer is C (107).", "C"),
        ("102", "102"),
        ("I think the measure is 107 degrees, which is choice (C)", "C"),
        ("正确选项是（D）10。", "D"),
    ],
)
def test_multiple_choice_forms(response: str, expected: str) -> None:
    ex = extract_answer(response, choices=CHOICES)
    assert ex is not None and ex.text == expected


def test_yes_no_span_opening_with_a_choice() -> None:
    ex = extract_answer("So the answer is no, there are not fewer trucks than buses.", choices=["Yes", "No"])
    assert ex is not None and ex.text == "No"


def test_conditional_statements_are_not_answers() -> None:
    text = (
        "If x > y, then the answer is (A) Yes. Otherwise, the answer is (B) No.\n\n"
        "Without the image we cannot determine the answer."
    )
    assert extract_answer(text, choices=["Yes", "No"]) is None


def test_article_a_is_not_option_a() -> None:
    assert letter_of("A polynomial of degree 2", ["x", "y"]) is None
    assert letter_of("a", ["x", "y"]) == "A"
    assert letter_of("(a) x", ["x", "y"]) == "A"
    assert letter_of("E", ["x", "y"]) is None  # out of range


def test_unbalanced_last_box_falls_back_to_previous_complete_one() -> None:
    assert last_boxed(r"\boxed{1} and then \boxed{2") is not None
    assert last_boxed(r"\boxed{1} and then \boxed{2")[0] == "1"
    assert last_boxed(r"\boxed{") is None


def test_escaped_braces_inside_box() -> None:
    assert last_boxed(r"\boxed{\{1,2\}}")[0] == r"\{1,2\}"


def test_answer_statements_lists_every_explicit_answer() -> None:
    text = "The answer is (A). Wait, recheck. The answer is (B)."
    assert answer_statements(text, ["x", "y"]) == ["A", "B"]


def test_no_answer_in_prose() -> None:
    assert extract_answer("I'm sorry, I cannot help with that.", choices=["Yes", "No"]) is None


# ------------------------------------------------------------------------------------------- adversarial
def _fast(fn, limit_s: float = 1.0):
    t = time.perf_counter()
    out = fn()
    assert time.perf_counter() - t < limit_s
    return out


def test_deeply_nested_braces() -> None:
    depth = 100_000
    text = r"\boxed{" + "{" * depth + "1" + "}" * depth + "}"
    ex = _fast(lambda: extract_answer(text))
    assert ex is not None and ex.source == "boxed" and len(ex.text) == 2 * depth + 1
    unbalanced = r"\boxed{" + "{" * depth
    _fast(lambda: extract_answer(unbalanced))


def test_ten_thousand_char_responses() -> None:
    words = ("the answer is maybe " * 500)[:10_000]
    _fast(lambda: extract_answer(words, choices=CHOICES))
    digits = "1," * 5000
    _fast(lambda: extract_answer(digits, answer_type="integer"))
    boxes = r"\boxed{" * 2000 + "x"
    _fast(lambda: extract_answer(boxes))
    parens = "(A)" * 3400
    _fast(lambda: extract_answer(parens, choices=CHOICES))


def test_non_utf8_bytes() -> None:
    raw = b"The answer is \xff\xfe \\boxed{4}\x80"
    ex = extract_answer(raw)
    assert ex is not None and ex.text == "4"
    # invalid UTF-8 is decoded with U+FFFD replacements (never dropped, never raising); a short line with no
    # marker is then its own answer, as any other
    garbage = extract_answer(b"\xc3\x28\xa0\xa1")
    assert garbage is not None and (garbage.text, garbage.source) == ("\ufffd(\ufffd\ufffd", "whole")
    boxed = extract_answer(b"so \\boxed{\xc3\x28} \xa0")
    assert boxed is not None and (boxed.text, boxed.source) == ("\ufffd(", "boxed")


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.text(alphabet=st.characters(blacklist_characters="\\{}"), max_size=200),
    content=st.from_regex(r"[a-z0-9+\-*/^ ]{1,20}(\{[a-z0-9 ]{0,5}\})?", fullmatch=True),
)
def test_property_last_box_round_trip(prefix: str, content: str) -> None:
    """Whatever precedes it, a final \\boxed{content} with balanced braces is extracted verbatim."""
    ex = extract_answer(prefix + r" \boxed{" + content + "}")
    assert ex is not None and ex.source == "boxed"
    assert ex.text == content.strip(" \t\r\n.,;:!?。，；：！？\"'“”‘’*")


def test_power_is_not_bold():
    # found by the round-trip property: "0**0**" read "**0**" as markdown bold and gave "00"
    assert extract_answer(r" \boxed{0**0**}").text == "0**0"
    assert extract_answer(r"The answer is **5**.").text == "5"
    assert extract_answer(r"\boxed{2**3}").text == "2**3"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_property_never_raises(text: str) -> None:
    extract_answer(text)
    extract_answer(text, choices=CHOICES)
    extract_answer(text, answer_type="integer")


def test_unpaired_double_star_is_an_operator_not_markdown():
    """``**`` is removed only as paired emphasis; ``2**3`` (Python-style power) stays as written."""
    assert extract_answer(r"\boxed{2**3}").text == "2**3"
    assert extract_answer(r"so \boxed{0**0}").text == "0**0"
    assert extract_answer(r"\boxed{**B**}").text == "B"
    assert extract_answer("The answer is **5**.").text == "5"

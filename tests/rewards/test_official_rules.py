"""Official-mode rules for the response styles a plain extraction gets wrong (mssr.rewards.official_rules): each
rule reproduces what MathVista's extractor + normaliser would do for one style, and switching it off changes
the verdict back (so the leave-one-system-out protocol can select rules)."""

from __future__ import annotations

import random

import pytest

from mssr.rewards import official_rules as rules
from mssr.rewards import verify
from mssr.rewards.equivalence import levenshtein

YN = ["yes", "no"]
DEG = ["30°", "45°", "60°", "70°"]
POP = ["decrease", "increase", "remain the same", "NA"]
CMP = ["larger than", "equal to", "smaller than"]


def official(response, answer, rule=None, **kw):
    """Official-mode verdict, with ``rule`` (a name or a list of names) switched off."""
    if rule is None:
        return verify(response, answer, mode="official", **kw)
    off = rules.RuleSet.without([rule] if isinstance(rule, str) else rule)
    return verify(response, answer, mode="official", rules=off, **kw)


def test_echoed_options_first_option_as_the_normaliser_reads_it() -> None:
    # normalize_extracted_answer takes re.findall(r'\(([a-zA-Z])\)', extraction)[0]: the first echoed option
    v = official("Options:\n(B) 4\n(C) 5", "4", choices=["3", "4", "5", "6"])
    assert (v.correct, v.extracted) == (True, "B")
    # without the rule the last "(X)" near the end is taken: option C
    assert not official("Options:\n(B) 4\n(C) 5", "4", "echoed_options", choices=["3", "4", "5", "6"]).correct
    # strict (training) mode: echoing two options chooses none
    s = verify("(C) Yes\n(D) No", "Yes", choices=["0", "1", "Yes", "No"])
    assert (s.correct, s.reason) == (False, "no_choice_match")


def test_echoed_letters_beyond_the_options_go_through_edit_distance() -> None:
    # "(C) Yes\n(D) No" to a Yes/No question: the normaliser reads "C", not an option letter, and picks the
    # option nearest to "C" by edit distance ("No": 2 edits, "Yes": 3)
    assert official("(C) Yes\n(D) No", "No", choices=["Yes", "No"]).correct
    assert not official("(C) Yes\n(D) No", "Yes", choices=["Yes", "No"]).correct


@pytest.mark.parametrize(
    "response",
    ["B is correct.", "I choose B.", "The shape has 11 parts. B is the right answer.", "I'd go with B"],
)
def test_letter_statement(response: str) -> None:
    ch = ["3/11", "8/11", "6/11", "3/5"]
    assert official(response, "8/11", choices=ch).extracted == "B"
    assert official(response, "8/11", "letter_statement", choices=ch).extracted != "B"


def test_letter_statement_needs_a_statement_about_the_letter() -> None:
    assert rules.letter_statement("A is a square.", 4) is None
    assert rules.letter_statement("I choose E.", 4) is None  # not an option


def test_option_value_names_the_option_by_its_number() -> None:
    v = official("The angle is 60 degrees.", "60°", choices=DEG)
    assert (v.correct, v.extracted) == (True, "C")
    # (the paraphrase rule's token overlap also reads the number; with both off, edit distance decides)
    assert official("The angle is 60 degrees.", "60°", "option_value", choices=DEG).correct
    off = official("The angle is 60 degrees.", "60°", ["option_value", "option_paraphrase"], choices=DEG)
    assert off.reason == "fuzzy_choice" and off.extracted == "The angle is 60 degrees"
    assert official("It is 5.", "5", choices=["3", "4.5", "5", "6"]).correct  # a full stop after a number


@pytest.mark.parametrize(
    ("response", "answer", "choices"),
    [
        ("It would go down.", "decrease", POP),
        ("The population would rise.", "increase", POP),
        ("Greater than.", "larger than", CMP),
        ("So it is less than.", "smaller than", CMP),
        ("It is greater.", "larger than", CMP),
        ("They are the same.", "equal to", CMP),
        ("They would stay the same.", "remain the same", POP),
    ],
)
def test_option_paraphrase(response: str, answer: str, choices: list[str]) -> None:
    v = official(response, answer, choices=choices)
    assert v.correct, v
    assert v.extracted == chr(65 + choices.index(answer))


def test_option_paraphrase_needs_a_unique_unnegated_match() -> None:
    assert rules.option_by_paraphrase("it would go down", POP) == 0
    assert rules.option_by_paraphrase("it would not go down", POP) is None  # negated: left to edit distance
    assert rules.option_by_paraphrase("the weather is nice", POP) is None
    assert official("It would go down.", "decrease", "option_paraphrase", choices=POP).extracted != "A"


@pytest.mark.parametrize(
    ("response", "answer"),
    [
        ("Coral is not the roughest.", "no"),
        ("Looking at the plot, Coral isn't the roughest.", "no"),
        ("Coral is the roughest.", "yes"),
        ("Based on the graph, coral is the roughest one.", "yes"),
    ],
)
def test_yesno_statement(response: str, answer: str) -> None:
    v = official(response, answer, choices=YN, question="Is Coral the roughest?")
    assert (v.correct, v.extracted) == (True, answer)


def test_yesno_statement_ignores_unrelated_text_and_refusals() -> None:
    assert rules.yesno_statement("I like trains.", "Is Coral the roughest?") is None
    assert rules.yesno_statement("Coral", "Is Coral the roughest?") is None  # a name, not a statement
    v = official(
        "I cannot determine whether Coral is the roughest.",
        "no",
        choices=YN,
        question="Is Coral the roughest?",
    )
    assert v.reason == "fuzzy_choice"  # the refusal path, not read as a negated statement
    assert (
        official(
            "Coral is not the roughest.",
            "no",
            "yesno_statement",
            choices=YN,
            question="Is Coral the roughest?",
        ).extracted
        != "no"
    )


@pytest.mark.parametrize(
    ("response", "written"),
    [
        ("We need the lengths. Therefore, the answer cannot be determined.", "Cannot be determined"),
        ("Without the figure, it is not possible to determine the correct option letter.", "N/A"),
        ("The figure is missing. Please provide the figure or more information.", "N/A"),
        ("Sorry, I can't help with images of people yet.", "Sorry, I can't help with images of people yet."),
        ("I can't process this file.", "N/A"),
    ],
)
def test_refusal_wording_is_what_the_extractor_writes(response: str, written: str) -> None:
    # the wording -> string pairs the development files' official extractions record
    v = official(response, "Yes", choices=["Yes", "No"])
    assert v.extracted == written and v.reason == "fuzzy_choice"


def test_refusal_in_the_answer_phrase_is_written_as_the_extractor_does() -> None:
    # "the answer is inconclusive and cannot be determined": the extractor writes "Cannot be determined"
    r = "It could be any of the options. Therefore, the answer is inconclusive and cannot be determined."
    assert (
        official(r, "a polynomial", choices=["a polynomial", "an exponential function"]).extracted
        == "Cannot be determined"
    )
    # "The correct option letter is (Cannot be determined)." -> "Cannot be determined", not "N/A"
    r = "We cannot tell. The correct option letter is (Cannot be determined)."
    assert official(r, "Yes", choices=["Yes", "No"]).extracted == "Cannot be determined"


@pytest.mark.parametrize(
    ("response", "value"),
    [
        (
            "x = 2\n\nTherefore, the length of AC is 2.\n\nThe correct option is not provided in the question.",
            "2",
        ),
        (
            "Therefore, the degree of ∠A is 180° - 50° = 130°.\n\nThe correct option is not provided in the question.",
            "130°",
        ),
        (
            "Therefore, the length of ED is √91.\n\nThe correct option letter is not provided in the question.",
            "√91",
        ),
    ],
)
def test_no_option_value(response: str, value: str) -> None:
    # the extractor writes the concluded value; the normaliser maps it to the nearest option
    v = official(response, "8", choices=["10", "8", "6", "4"])
    assert v.extracted == value
    assert official(response, "8", "no_option_value", choices=["10", "8", "6", "4"]).extracted != value
    assert rules.value_before_no_option("The answer is 2. I like it.") is None


def test_refusal_takes_no_number_from_the_reasoning() -> None:
    r = "We add 3 + 4 = 7 for the first part. Without the chart, we cannot determine the answer."
    assert not official(r, "7", answer_type="integer").correct
    assert official(r, "7", "refusal_no_number", answer_type="integer").correct
    s = verify(r, "7", answer_type="integer")  # strict (training) mode: no credit either
    assert (s.correct, s.reason) == (False, "refusal")


def test_option_named_in_passing_before_a_refusal_is_not_the_answer() -> None:
    r = "One part measures 6 and another 64. Without the figure, it is not possible to determine the correct option letter."
    v = official(r, "6", choices=["3", "4", "5", "6"])
    assert v.extracted == "N/A" and v.reason == "fuzzy_choice"
    assert official(r, "6", "refusal_no_number", choices=["3", "4", "5", "6"]).extracted == "6"
    # a request for information is not read as a paraphrase ("more information" is not "larger than")
    r = "Please provide the figure or more information to answer the question."
    assert official(r, "larger than", choices=CMP).extracted == "N/A"


def test_restated_question_is_never_the_answer() -> None:
    q = "How many bars have a value above 40?"
    assert not official(f"Question: {q}\n", "40", answer_type="integer", question=q).correct
    assert not verify(f"Question: {q}\n", "40", answer_type="integer", question=q).correct  # strict too
    assert official(f"Question: {q}\n", "40", "question_echo", answer_type="integer", question=q).correct
    # the answer after the restated query is found
    v = official(
        f"Hint: answer with an integer.\nQuestion: {q}\nAnswer: 3", "3", answer_type="integer", question=q
    )
    assert v.correct


def test_prompt_like_lines_that_carry_an_answer_are_kept() -> None:
    # only MathVista's hint wording and question lines are dropped, not a line that happens to start "Hint:"
    v = official(
        "Hint: I count the bars. There are 5.", "5", answer_type="integer", question="How many bars?"
    )
    assert v.correct
    v = official("Question: How many bars are taller than 40?\nAnswer: 3", "3", answer_type="integer")
    assert v.correct


def test_conditional_detection_stops_at_a_line_break() -> None:
    # "If ..." on the restated question's line does not make the next line's "Answer: C" conditional
    r = "Question: If $m\\angle1 = 38$, find $m \\angle 2$\nAnswer: C"
    assert official(r, "52", choices=["33", "38", "52", "87"]).extracted == "C"


def test_leading_answer_beats_the_explanations_last_number() -> None:
    r = "There are 3 bars below 40 in the image. They are 2014, 2015 and 2016, with values 58, 59 and 63."
    assert official(r, "3", answer_type="integer").correct
    assert official("3.\nThe values are 58, 59 and 63.", "3", answer_type="integer").correct
    assert not official(r, "3", "leading_answer", answer_type="integer").correct
    # a concluding statement still wins
    assert official(
        "There are 3 red cubes. Therefore, there are 5 objects in total.", "5", answer_type="integer"
    ).correct


@pytest.mark.parametrize(
    ("response", "answer"),
    [("There are three people in the image.", "3"), ("Twelve.", "12"), ("The answer is zero.", "0")],
)
def test_number_words(response: str, answer: str) -> None:
    v = official(response, answer, answer_type="integer")
    assert (v.correct, v.extracted) == (True, answer)
    assert not official(response, answer, "number_words", answer_type="integer").correct


def test_number_words_only_for_one_stated_value() -> None:
    assert rules.number_word("between two and three") is None
    assert rules.number_word("3 of the two groups") is None  # digits present: the number rules decide
    # a refusal that mentions a number word is not an answer
    assert not official(
        "The difference between the two genders cannot be determined.", "2", answer_type="integer"
    ).correct


@pytest.mark.parametrize(
    ("text", "lead"),
    [
        ("3 bars (2014, 2015 and 2016) are below 40.", "3"),
        ("Three bars are below 40, namely 2014 and 2016.", "3"),
        ("There are three bars in 2014.", "3"),
        ("3.\nThe bars are 58, 59 and 63.", "3"),
        ("1. First, count the bars: 58, 59.", None),  # a numbered list is not an answer
        ("2 times 3 is 6", None),  # an operation, not a count
        ("The bars are 58, 59 and 63.", None),
        ("2019 value was 7.84 years.", None),  # a year opening the sentence
    ],
)
def test_leading_answer_forms(text: str, lead: str | None) -> None:
    assert rules.leading_answer(text) == lead


def test_rule_sets_are_values_and_reject_unknown_rules() -> None:
    with pytest.raises(ValueError, match="unknown rules"):
        rules.RuleSet.without(["nope"])
    off = rules.RuleSet.without(["option_value"])
    assert not off.enabled("option_value") and all(off.enabled(r) for r in rules.RULES if r != "option_value")
    assert all(rules.ALL_RULES.enabled(r) for r in rules.RULES)
    assert not any(isinstance(v, set) for v in vars(rules).values())  # no module-level mutable state


def test_grading_is_reentrant_across_threads() -> None:
    # two rule sets graded at once from two threads: each verdict follows its own rule set (a process-global
    # switch made one thread's rules leak into the other's grading)
    from concurrent.futures import ThreadPoolExecutor

    r = "```python\na = 47\nb = 1141\nc = 3\nanswer = b - c * a\nprint(answer)\n```"
    off = rules.RuleSet.without(["program_output"])

    def grade(k: int) -> bool:
        rs = off if k % 2 else rules.ALL_RULES
        return verify(r, "1000", answer_type="integer", mode="official", rules=rs).correct

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(grade, range(200)))
    assert got == [k % 2 == 0 for k in range(200)]


def _dp(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_bit_parallel_edit_distance_equals_the_dynamic_programme() -> None:
    rng = random.Random(0)
    for _ in range(3000):
        a = "".join(rng.choice("ab c°") for _ in range(rng.randint(0, 14)))
        b = "".join(rng.choice("abcd°") for _ in range(rng.randint(0, 90 if rng.random() < 0.1 else 12)))
        assert levenshtein(a, b) == _dp(a, b) == levenshtein(b, a), (a, b)

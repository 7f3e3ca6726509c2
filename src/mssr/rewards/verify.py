"""``verify``: one response against one gold answer, in ``strict`` or ``official`` mode.

* ``strict`` — the training reward's rules (see :mod:`mssr.rewards.equivalence`): value equality for numbers,
  exact option matching for multiple choice, math-verify for expressions; an answer that names no choice, a
  refusal, or no answer at all is wrong.
* ``official`` — MathVista's scoring conventions: the extraction a benchmark grader would hand to its scorer,
  then :func:`~mssr.rewards.equivalence.mathvista_normalize` (nearest choice by edit distance, integer/float
  with ``precision``, list as a string) and string equality. Use it to reproduce published numbers, never to
  train: it gives credit to refusals that happen to be closest to the right option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mssr.rewards import official_rules as R
from mssr.rewards.equivalence import (
    Unverifiable,
    gold_choice_index,
    lists_equal,
    match_choice,
    math_equal,
    mathvista_normalize,
    numbers_equal,
    scalars_equal,
)
from mssr.rewards.extract import DELIMITED_SOURCES, Extraction, extract_answer, letter_of, number_of_span
from mssr.rewards.official_rules import ALL_RULES, RuleSet
from mssr.rewards.program import program_output
from mssr.rewards.text import clean_span, parse_number, to_text

MODES = ("strict", "official")
# responses are graded on their last MAX_RESPONSE_CHARS characters (the final answer is at the end): every
# extraction path is linear, and this bounds the constant, so a degenerate 10 MB response is graded in ~0.1 s
MAX_RESPONSE_CHARS = 32_768


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`verify`.

    ``reason`` is one of: ``match``, ``mismatch``, ``no_answer``, ``refusal``, ``no_choice_match``,
    ``unclean_end``, ``unverifiable`` (the checker refused or failed on the input; counted, scored wrong),
    ``fuzzy_choice`` (official mode only: the option was picked by edit distance), ``malformed`` (official
    mode only: the extraction does not read as the answer type).
    """

    correct: bool
    extracted: str | None
    reason: str


_REFUSAL = re.compile(
    r"(?:cannot|can't|can not|unable to|impossible to|not possible to|not able to)\s+(?:be\s+)?"
    r"(?:determine|determined|answer|tell|calculate|find|provide|help|solve|see|identify|say)"
    r"|i'?m sorry|i apologi[sz]e|not enough information|insufficient information|no (?:image|figure) "
    r"(?:is )?(?:provided|given)|^\s*n/?a\s*$|\bnot (?:provided|applicable|determinable)\b|\bindeterminate\b"
    r"|\binconclusive\b|none of the (?:given |above |provided )?(?:choices|options|answers)|无法(?:确定|判断|回答)",
    re.I,
)


def is_refusal(text: str) -> bool:
    """Does the text decline to answer ("cannot be determined", "I'm sorry", "N/A", "none of the choices")?"""
    return bool(_REFUSAL.search(to_text(text)[-2000:]))


_CLEAN_TAIL = re.compile(
    r"^(?:\s|\$|\\\]|\\\)|\.|</answer>|</think>|<\|im_end\|>|<\|endoftext\|>|</s>|<\|eot_id\|>)*$", re.I
)


def ends_cleanly(response: str, extraction: Extraction) -> bool:
    """True if the answer was delimited (``\\boxed``/``<answer>``) and only whitespace, closing math delimiters,
    a full stop or end-of-text tags follow it."""
    return extraction.source in DELIMITED_SOURCES and bool(_CLEAN_TAIL.match(response[extraction.end :]))


def verify(
    response: object,
    answer: object,
    *,
    answer_type: str | None = None,
    choices: list[str] | None = None,
    mode: str = "strict",
    precision: int | None = None,
    require_clean_end: bool = False,
    question: str | None = None,
    max_chars: int | None = MAX_RESPONSE_CHARS,
    rules: RuleSet = ALL_RULES,
) -> Verdict:
    """Grade ``response`` against the gold ``answer``.

    ``answer_type``: "integer" | "float" | "list" | "text" | None (free-form: numbers, text or LaTeX).
    ``choices``: the options of a multiple-choice question (gold may be a choice's text or its letter).
    ``precision``: decimals a float answer is compared at (MathVista's ``precision``).
    ``require_clean_end``: the answer must sit in ``\\boxed{}``/``<answer>`` with nothing but whitespace, closing
    delimiters or end tags after it (guards against a policy padding junk after a correct answer).
    ``question``: the question text, when known; a restated question is ignored by extraction (no number or
    option is taken from it).
    ``max_chars``: grade only the response's last ``max_chars`` characters (None: all of it).
    ``rules``: the optional rules of :mod:`mssr.rewards.official_rules` to apply (a value; default all).

    Pure and thread-safe, no timeout of its own: run it under :func:`mssr.rewards.score_batch` (or
    :class:`mssr.rewards.runner.InlineRunner`/``ProcessRunner``) when inputs are untrusted.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    text = to_text(response)
    if max_chars is not None and len(text) > max_chars:
        text = text[-max_chars:]
    gold = to_text(answer).strip()
    choices = [to_text(c) for c in choices] if choices else None
    if mode == "official":
        return _verify_official(text, gold, answer_type, choices, precision, question, rules)
    return _verify_strict(text, gold, answer_type, choices, precision, require_clean_end, question, rules)


# ------------------------------------------------------------------------------------------------ strict
def _extract_past_question_echo(
    text: str, question: str | None, choices: list[str] | None, answer_type: str, rules: RuleSet = ALL_RULES
) -> tuple[str, Extraction | None]:
    """The response without a restated question (rule ``question_echo``) and the answer extracted from it,
    its end offset mapped back into ``text``."""
    body = R.strip_question_echo(text, question, choices) if rules.enabled("question_echo") else text
    ex = extract_answer(body, choices=choices, answer_type=answer_type)
    if ex is not None and body is not text:
        ex = Extraction(ex.text, ex.source, _end_in(text, body, ex))
    return body, ex


def _verify_strict(
    text: str,
    gold: str,
    answer_type: str | None,
    choices: list[str] | None,
    precision: int | None,
    require_clean_end: bool,
    question: str | None = None,
    rules: RuleSet = ALL_RULES,
) -> Verdict:
    if choices and rules.enabled("echoed_options") and R.echoed_options(text, choices) is not None:
        return Verdict(False, text.strip(), "no_choice_match")  # several options echoed: none chosen
    body, ex = _extract_past_question_echo(text, question, choices, answer_type, rules)
    if ex is None:
        return Verdict(False, None, "refusal" if is_refusal(text) else "no_answer")
    if (
        rules.enabled("refusal_no_number")
        and ex.source in ("last_number", "conclusion")
        and is_refusal(_last_sentence(body))
    ):
        return Verdict(False, None, "refusal")  # a number from the reasoning of a response that gives up
    if require_clean_end and not ends_cleanly(text, ex):
        return Verdict(False, ex.text, "unclean_end")
    pred = ex.text
    try:
        ok = _strict_equal(pred, gold, answer_type, choices, precision)
    except Unverifiable:
        return Verdict(False, pred, "unverifiable")
    if ok is None:
        return Verdict(False, pred, "refusal" if is_refusal(pred) else "no_choice_match")
    return Verdict(ok, pred, "match" if ok else ("refusal" if is_refusal(pred) else "mismatch"))


def _strict_equal(
    pred: str, gold: str, answer_type: str | None, choices: list[str] | None, precision: int | None
) -> bool | None:
    """True/False, or None when a multiple-choice answer names no option."""
    if choices:
        gi = gold_choice_index(gold, choices)
        pi = match_choice(pred, choices)
        if pi is None:
            return None
        if gi is not None:
            return pi == gi
        return scalars_equal(choices[pi], gold)
    if re.fullmatch(r"\(?[A-Z]\)?", gold):  # a letter answer without the options list
        return letter_of(pred, None) == gold.strip("()")
    if answer_type == "list":
        return lists_equal(pred, gold, precision=precision)
    integer = answer_type == "integer"
    gn = parse_number(gold)
    if gn is not None:
        pn = parse_number(pred)
        if pn is None and "=" in pred:
            pn = parse_number(pred.rsplit("=", 1)[1])
        if pn is not None:
            return numbers_equal(pn, gn, precision=precision, integer=integer)
        if answer_type in ("integer", "float"):
            num = number_of_span(pred) if len(pred) <= 40 else None
            # a short span like "5 objects left" or "x ≈ 3.2"; anything longer goes to math-verify
            if num is not None and not re.search(r"[\\^*/+]", pred):
                pnum = parse_number(num)
                return pnum is not None and numbers_equal(pnum, gn, precision=precision, integer=integer)
    if scalars_equal(pred, gold, precision=precision, integer=integer):
        return True
    if _is_prose(pred) or (gn is not None and not re.search(r"[\d\\π√∞]", pred)):
        return False  # words, or a number-free answer to a numeric question: nothing for math-verify to do
    if gn is None and parse_number(pred) is None and not re.search(r"[\\^_{}=<>()\[\]/*+\d]", gold + pred):
        return False  # plain words on both sides, already compared
    return math_equal(pred, gold)


_LATEX_CMD = re.compile(r"\\[a-zA-Z]+")


def _is_prose(s: str) -> bool:
    """Two consecutive words of 3+ letters outside LaTeX commands: an English phrase, not an expression."""
    return bool(re.search(r"[A-Za-z]{3,}\s+[A-Za-z]{3,}", _LATEX_CMD.sub(" ", s)))


# ------------------------------------------------------------------------------------------------ official
def _end_in(text: str, body: str, ex: Extraction) -> int:
    """Map an extraction's end offset in ``body`` (``text`` with a restated question removed) back to ``text``."""
    tail = body[ex.end :]
    return len(text) - len(tail) if text.endswith(tail) else len(text)


def _last_sentence(text: str, max_chars: int = 200) -> str:
    parts = [p.strip() for p in re.split(r"(?<=[.!?。！？])\s+|\n+", text.strip()) if p.strip()]
    last = clean_span(parts[-1]) if parts else ""
    return last if len(last) <= max_chars else ""


def _named(extracted: str, choices: list[str]) -> bool:
    """Does the extraction name an option the way MathVista's normaliser reads one (a choice, a letter, "(X)")?"""
    return (
        extracted in choices
        or bool(re.fullmatch(r"[A-Z]", extracted) and ord(extracted) - 65 < len(choices))
        or bool(re.search(r"\([A-Za-z]\)", extracted))
    )


def official_extraction(
    text: str,
    answer_type: str | None,
    choices: list[str] | None,
    question: str | None = None,
    rules: RuleSet = ALL_RULES,
) -> tuple[str | None, Extraction | None]:
    """The string MathVista's pipeline would score for ``text``: its quick rules, then the answer statement, with
    the rules of :mod:`mssr.rewards.official_rules` for the styles a plain extraction gets wrong."""
    stripped = text.strip()
    if stripped == "":
        return "", None
    if choices and text in choices:
        return text, None
    if answer_type == "integer" and re.fullmatch(r"[-+]?\d+", stripped) and len(stripped) < 100:
        return str(int(stripped)), None
    if answer_type == "float" and re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)", stripped) and len(stripped) < 100:
        return str(float(stripped)), None
    if rules.enabled("program_output"):
        printed = program_output(text)
        if printed is not None and "print" not in printed:  # (a program printing code is read as text)
            return official_extraction(printed, answer_type, choices, question, rules)
    if choices and rules.enabled("echoed_options"):
        letter = R.echoed_options(text, choices)
        if letter is not None:
            return letter, None
    body, ex = _extract_past_question_echo(text, question, choices, answer_type, rules)
    if answer_type in ("integer", "float") and not choices:
        if answer_type == "integer" and rules.enabled("number_words"):
            span = ex.text if ex is not None else clean_span(body)
            word = None if is_refusal(span) else R.number_word(span)
            if word is not None:
                return word, ex
        if ex is None:
            return None, None
        if (
            rules.enabled("refusal_no_number")
            and ex.source in ("last_number", "conclusion")
            and is_refusal(_last_sentence(body))
        ):
            return None, None
        if ex.source == "last_number" and rules.enabled("leading_answer"):
            lead = R.leading_answer(body)
            if lead is not None:
                return lead, ex
        num = number_of_span(ex.text)
        return (num if num is not None else ex.text), ex
    if not choices:
        return (None, None) if ex is None else (ex.text, ex)
    if (
        ex is not None
        and rules.enabled("refusal_no_number")
        and ex.source in ("choice_text", "conclusion", "last_number")
        and (is_refusal(_last_sentence(body)) or R.refusal_wording(body) is not None)
    ):
        ex = None  # an option named in the reasoning of a response that ends by giving up is not its answer
    return _official_choice(body, ex, choices, question, rules)


def _official_choice(
    body: str, ex: Extraction | None, choices: list[str], question: str | None, rules: RuleSet = ALL_RULES
) -> tuple[str | None, Extraction | None]:
    """Multiple choice: the extraction when it names an option, else what the official extractor would write
    for the style (a concluded value, a refusal's wording, Yes/No for a statement, the option meant by value or
    paraphrase), else the extraction as is (the normaliser's edit distance decides)."""
    extracted = ex.text if ex is not None else None
    if extracted is not None and _named(extracted, choices):
        return extracted, ex
    if rules.enabled("no_option_value"):
        value = R.value_before_no_option(body)
        if value is not None:
            return value, ex
    if extracted is not None and rules.enabled("refusal_wording") and is_refusal(extracted):
        written = R.refusal_wording(body)  # "the answer is inconclusive and cannot be determined"
        if written is not None:
            return written, ex
    if rules.enabled("letter_statement") and (extracted is None or ex is None or ex.source != "phrase"):
        letter = R.letter_statement(body, len(choices))
        if letter is not None:
            return letter, ex
    yn = R.yes_no_index(choices)
    if (
        yn is not None
        and rules.enabled("yesno_statement")
        and not is_refusal(_last_sentence(body))
        and R.refusal_wording(body) is None
    ):
        said = R.yesno_statement(extracted if extracted is not None else body, question)
        if said is None and extracted is not None:
            said = R.yesno_statement(body, question)
        if said is not None:
            return choices[yn[0] if said else yn[1]], ex
    # no option named: the one the answer span (else the final sentence) states by value or paraphrase
    span = extracted
    if span is None:
        last = _last_sentence(body)
        refuses = is_refusal(last) or R.refusal_wording(body) is not None
        span = None if not last or refuses else last
    if span is not None:
        idx = None
        if rules.enabled("option_value"):
            idx = R.option_by_value(span, choices)
        if idx is None and rules.enabled("option_paraphrase"):
            idx = R.option_by_paraphrase(span, choices)
        if idx is not None:
            return chr(65 + idx), ex
    return extracted, ex


def _verify_official(
    text: str,
    gold: str,
    answer_type: str | None,
    choices: list[str] | None,
    precision: int | None,
    question: str | None = None,
    rules: RuleSet = ALL_RULES,
) -> Verdict:
    extracted, _ = official_extraction(text, answer_type, choices, question, rules)
    question_type = "multi_choice" if choices else "free_form"
    if extracted is None:
        if not choices:
            return Verdict(False, None, "refusal" if is_refusal(text) else "no_answer")
        # the official extractor (an LLM) writes a no-answer string for such a response ("N/A", "Cannot be
        # determined", the apology itself); its scorer then maps that text to the nearest option
        extracted = (R.refusal_wording(text) if rules.enabled("refusal_wording") else None) or _last_sentence(
            text
        )
    pred = mathvista_normalize(extracted, choices, question_type, answer_type, precision)
    correct = pred == gold
    if choices and not _named(extracted, choices):
        return Verdict(correct, extracted, "fuzzy_choice")
    if correct:
        return Verdict(True, extracted, "match")
    if pred is None:
        return Verdict(False, extracted, "refusal" if is_refusal(extracted or text) else "malformed")
    return Verdict(False, extracted, "mismatch")

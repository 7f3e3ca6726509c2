"""Is an extracted answer equivalent to the gold answer?

Two families of rules:

* **strict** (training rewards, ``mode="strict"``): numbers compare by value (thousands separators, units,
  ``%``, currency, ``a/b``, ``\\frac``, scientific notation; a stated ``precision`` rounds both sides, otherwise a
  relative tolerance of 1e-6), lists element-wise, multiple choice through the option letter or the exact choice
  text (either direction: gold given as text or as a letter), free text case/space-insensitively, and everything
  else through math-verify (LaTeX, fractions, roots, intervals, sets). An answer that names no choice is wrong.
* **official MathVista** (``mathvista_normalize``): the benchmark's own post-processing of an extraction —
  multiple choice: "(X)" or a bare letter picks that option, anything else the option with the smallest edit
  distance; integer: the extraction must read as an integer; float: rounded to ``precision`` decimals; list:
  the string as is — then plain string equality with the gold answer.

math-verify runs with its own (signal-based) timeouts disabled so it is safe in any thread; the caller
(:mod:`mssr.rewards.runner`) enforces deadlines. Inputs that would make sympy compute astronomically large
numbers (power towers, huge exponents or factorials, very deep nesting) are refused up front and reported as
"unverifiable" instead.
"""

from __future__ import annotations

import functools
import math
import re

from mssr.rewards.text import MAX_ANSWER_CHARS, Number, clean_span, normalize_text, parse_number, to_text

#: relative tolerance for numbers when no precision is stated
REL_TOL = 1e-6
ABS_TOL = 1e-9


class Unverifiable(Exception):
    """The pair cannot be checked safely (too long, explosive expression, parser failure)."""


# ----------------------------------------------------------------------------------------------- edit distance
def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert/delete/substitute, cost 1): Myers' bit-parallel algorithm (Hyyrö's formulation
    for the global distance), O(len(a) · ⌈len(b)/64⌉) — a 100,000-character extraction against a short option
    costs milliseconds, not seconds; equal to the textbook dynamic programme (tested against it)."""
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    peq: dict[str, int] = {}
    for i, c in enumerate(b):
        peq[c] = peq.get(c, 0) | (1 << i)
    mask, last = (1 << m) - 1, 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for c in a:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | ~(xh | pv)
        mh = pv & xh
        if ph & last:
            score += 1
        elif mh & last:
            score -= 1
        ph = (ph << 1) | 1
        mh <<= 1
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv & mask
    return score


def nearest_choice(pred: str, choices: list[str]) -> str:
    """The first choice at the smallest edit distance from ``pred`` (MathVista's tie-break: the earliest)."""
    dists = [levenshtein(pred, c) for c in choices]
    return choices[dists.index(min(dists))]


# ----------------------------------------------------------------------------------------------- MathVista
def mathvista_normalize(
    extraction: str | None,
    choices: list[str] | None,
    question_type: str | None,
    answer_type: str | None,
    precision: int | None,
) -> str | None:
    """MathVista's official normalisation of an extracted answer (facts from its ``calculate_score.py``).

    Integer answers follow the rule its published verdicts were computed with: the extraction must *read as*
    an integer (``"3.4"`` and ``"14.0"`` give no prediction; a later revision of the script truncates instead).
    """
    if question_type == "multi_choice" and choices:
        ext = extraction.strip() if isinstance(extraction, str) else str(extraction)
        letters = re.findall(r"\(([a-zA-Z])\)", ext)
        if letters:
            ext = letters[0].upper()
        options = [chr(ord("A") + i) for i in range(len(choices))]
        if ext in options:
            return choices[options.index(ext)]
        return nearest_choice(ext, choices)
    if extraction is None:
        return None
    if answer_type == "integer":
        s = extraction.strip()
        return str(int(s)) if re.fullmatch(r"[-+]?\d+", s) and len(s) < 100 else None
    if answer_type == "float":
        s = extraction.strip()
        if not re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?", s) or len(s) > 100:
            return None
        try:
            return str(round(float(s), int(precision))) if precision is not None else str(round(float(s)))
        except (OverflowError, ValueError):
            return None
    return str(extraction)


# ----------------------------------------------------------------------------------------------- numbers
def numbers_equal(pred: Number, gold: Number, *, precision: int | None = None, integer: bool = False) -> bool:
    """Value equality with percent handling: ``25%`` equals ``25`` and ``0.25``; ``precision`` rounds both."""
    candidates = [pred.value]
    if pred.percent and not gold.percent:
        candidates.append(pred.value / 100.0)
    if gold.percent and not pred.percent:
        candidates.append(pred.value * 100.0)
    for p in candidates:
        g = gold.value
        if not (math.isfinite(p) and math.isfinite(g)):
            if p == g:
                return True
            continue
        if integer and abs(p - round(p)) > ABS_TOL:
            continue
        if precision is not None:
            if math.isclose(
                round(p, precision), round(g, precision), rel_tol=0, abs_tol=10.0 ** (-precision - 3)
            ):
                return True
        elif math.isclose(p, g, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            return True
    return False


def _split_list(s: str) -> list[str] | None:
    s = clean_span(s).strip()
    if len(s) > MAX_ANSWER_CHARS:
        return None
    if s[:1] in "[(" and s[-1:] in "])":
        s = s[1:-1]
    parts = [p.strip() for p in re.split(r",|;|\band\b", s) if p.strip()]
    return parts or None


def lists_equal(pred: str, gold: str, *, precision: int | None = None) -> bool:
    """Element-wise equality of two comma-separated lists (brackets optional), order kept."""
    pl, gl = _split_list(pred), _split_list(gold)
    if pl is None or gl is None or len(pl) != len(gl):
        return False
    return all(scalars_equal(p, g, precision=precision) for p, g in zip(pl, gl))


def scalars_equal(pred: str, gold: str, *, precision: int | None = None, integer: bool = False) -> bool:
    """Number-or-text equality without math-verify (cheap, used for list elements and choices)."""
    if normalize_text(pred) == normalize_text(gold):
        return True
    pn, gn = parse_number(pred), parse_number(gold)
    if pn is not None and gn is not None:
        return numbers_equal(pn, gn, precision=precision, integer=integer)
    return False


# ----------------------------------------------------------------------------------------------- math-verify
_EXPLOSIVE = (
    re.compile(r"\^\s*\{[^{}]*\^"),  # nested exponent: 10^{10^{10}}
    re.compile(r"\^\s*\{\s*\{"),  # 10^{{...}}
    re.compile(r"\^\s*\(?\s*[\w.]+\s*\)?\s*\^"),  # 9^9^9, 2^(3)^4
    re.compile(r"\*\*[^*]*\*\*"),  # python power tower
    re.compile(r"\^\s*\{?\s*[-+]?\d{4,}"),  # 2^{100000}
    re.compile(r"\d{3,}\s*!|\d+\s*!\s*!"),  # 1000! / 5!!
    re.compile(r"\\(?:int|sum|prod|lim)(?![a-zA-Z])"),  # symbolic evaluation can run for minutes
)
_MAX_NESTING = 6


def _nesting_depth(s: str) -> int:
    depth = best = 0
    for c in s:
        if c in "({[":
            depth += 1
            best = max(best, depth)
        elif c in ")}]":
            depth = max(0, depth - 1)
    return best


def check_safe(s: str) -> None:
    """Raise :class:`Unverifiable` for inputs that could make sympy hang or exhaust memory."""
    if len(s) > MAX_ANSWER_CHARS:
        raise Unverifiable(f"answer longer than {MAX_ANSWER_CHARS} characters")
    for rx in _EXPLOSIVE:
        if rx.search(s):
            raise Unverifiable("expression could explode (power tower, huge exponent/factorial, integral)")
    if _nesting_depth(s) > _MAX_NESTING:
        raise Unverifiable(f"brackets nested deeper than {_MAX_NESTING}")


@functools.cache
def _math_verify():
    """Import math-verify lazily (sympy takes ~1 s) and silence its 'timeout disabled' warning: we time out."""
    import math_verify
    import math_verify.grader
    import math_verify.parser

    math_verify.parser.TIMEOUT_WARNING_SHOWN = True
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True
    return math_verify


def math_equal(pred: str, gold: str) -> bool:
    """math-verify's equivalence of two answer strings (LaTeX or plain), signal timeouts off.

    Raises :class:`Unverifiable` when either side is unsafe or does not parse.
    """
    pred, gold = to_text(pred), to_text(gold)
    check_safe(pred)
    check_safe(gold)
    mv = _math_verify()
    cfg = [mv.LatexExtractionConfig(boxed_match_priority=0), mv.ExprExtractionConfig()]

    def _parse(s: str):
        s = s.strip()
        wrapped = s if ("$" in s or "\\boxed" in s or "\\[" in s or "\\(" in s) else f"${s}$"
        out = mv.parse(wrapped, extraction_config=cfg, parsing_timeout=None)
        if not out:
            out = mv.parse(s, extraction_config=cfg, parsing_timeout=None)
        return out

    g, p = _parse(gold), _parse(pred)
    if not g or not p:
        raise Unverifiable("math-verify could not parse the answer")
    return bool(mv.verify(g, p, timeout_seconds=None))


# ----------------------------------------------------------------------------------------------- choices
def gold_choice_index(answer: str, choices: list[str]) -> int | None:
    """Which option the gold answer designates: its text (preferred) or its letter ("B", "(B)")."""
    if answer in choices:
        return choices.index(answer)
    key = normalize_text(answer)
    keys = [normalize_text(c) for c in choices]
    if keys.count(key) == 1:
        return keys.index(key)
    m = re.fullmatch(r"\s*\(?([A-Za-z])\)?\.?\s*", answer)
    if m:
        idx = ord(m.group(1).upper()) - ord("A")
        if 0 <= idx < len(choices):
            return idx
    return None


def match_choice(pred: str, choices: list[str]) -> int | None:
    """Strict option matching: a bare option letter, the exact (normalised) choice text, or a number equal to
    exactly one numeric choice. Returns ``None`` for anything that names no choice or several."""
    from mssr.rewards.extract import letter_of

    if pred in choices:
        return choices.index(pred)
    letter = letter_of(pred, choices) if len(pred) <= 200 else None
    keys = [normalize_text(c) for c in choices]
    key = normalize_text(pred)
    if keys.count(key) == 1:
        return keys.index(key)
    if letter is not None:
        return ord(letter) - ord("A")
    pn = parse_number(pred)
    if pn is not None:
        hits = [
            i for i, c in enumerate(choices) if (cn := parse_number(c)) is not None and numbers_equal(pn, cn)
        ]
        if len(hits) == 1:
            return hits[0]
    return None

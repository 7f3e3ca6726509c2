"""Rules that make ``official`` mode write what MathVista's extractor would write for the response styles a
plain answer extraction gets wrong. Each rule names the official behaviour it reproduces or the class of
disagreement it fixes (docs/rewards.md, "Response styles"); each can be switched off (:func:`disabled`) so that
the leave-one-system-out protocol (:mod:`mssr.evaluation.study.generalisation`) can select rules on some files and
measure them on another.

The official pipeline (MathVista ``evaluation/``): ``extract_answer.py`` returns ``""`` for an empty response,
the response itself if it is a choice, ``int``/``float`` of it if it reads as one, else what GPT-4 writes after
the demo prompt of ``prompts/ext_ans.py`` + the query (hint, question, choices) + the response; then
``calculate_score.py``'s ``normalize_extracted_answer`` (multiple choice: first ``(X)`` → option X, a bare
letter → its option, else ``get_most_similar`` = smallest Levenshtein distance) and ``safe_equal``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mssr.rewards.text import clean_span, numbers_in, parse_number

#: rule name -> what it reproduces / fixes
RULES: Mapping[str, str] = MappingProxyType(
    {
        "echoed_options": "a response that only echoes option lines ('(C) Yes\\n(D) No'): the extractor copies them "
        "and the normaliser's first '(X)' match picks the first echoed option",
        "option_value": "an answer span that names one option's text or value ('It is 5', '60 degrees' for '60°'): "
        "the extractor, which sees the choices, writes that option",
        "letter_statement": "an option letter stated in a sentence without an answer phrase ('B is correct.', "
        "'I choose C.', 'I would go with (A)'): the extractor writes that letter",
        "option_paraphrase": "an answer span that paraphrases one option ('greater than' for 'larger than', "
        "'go down' for 'decrease'): that option, by normalised token overlap with a small synonym table",
        "yesno_statement": "a yes/no question answered by a statement ('Coral is not the roughest.'): negated -> No, "
        "affirmed restatement of the question -> Yes, as the extractor writes it",
        "refusal_wording": "a refusal: the no-answer string the extractor writes for its wording ('... cannot be "
        "determined' -> 'Cannot be determined'; requests for information, a short 'I can't …' and 'not possible to "
        "determine the correct option' -> 'N/A'; a short 'Sorry, …' copied whole), mapped to an option by edit distance",
        "refusal_no_number": "a response that ends in a refusal states no answer: no intermediate number (free "
        "form) or option named in passing (multiple choice) is taken from its reasoning; the extractor writes a "
        "no-answer string",
        "leading_answer": "a numeric answer stated first ('3. There are three bars …', 'There are 3 bars below 40. "
        "They are 58, 59 and 63.') and followed by explanation without a concluding statement: the extractor "
        "takes the stated answer, not the explanation's last number",
        "number_words": "an integer answer written as a word ('There are three people.', 'The answer is twelve'): "
        "the extractor, asked for an integer by the hint, writes its digits",
        "no_option_value": "a response that concludes a value ('Therefore, the size of ∠PAQ is 35°.') and then says "
        "the correct option is not provided / not among the choices: the extractor writes that value (the "
        "development files record 35°, 130°, 58°, √91, 2, 33 for such responses), which the normaliser maps to "
        "the nearest option",
        "program_output": "a program-of-thought response (Python that prints its answer): MathVista runs it and "
        "the extractor reads what it printed; mssr reproduces the output with a restricted interpreter "
        "(mssr.rewards.program, no exec)",
        "question_echo": "a response that restates the query (hint, question, choices): extraction ignores the "
        "restated text, so no number or option is taken from the question",
    }
)


@dataclass(frozen=True)
class RuleSet:
    """Which optional rules of :data:`RULES` grading applies: a value passed to ``verify(rules=...)`` — grading
    keeps no state of its own, so it is reentrant and thread-safe. ``RuleSet()`` is every rule (what ships);
    ``RuleSet.without(names)`` switches some off (the leave-one-system-out study)."""

    disabled: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = set(self.disabled) - set(RULES)
        if unknown:
            raise ValueError(f"unknown rules {sorted(unknown)}; known: {sorted(RULES)}")

    @classmethod
    def without(cls, names: Iterable[str]) -> RuleSet:
        return cls(frozenset(names))

    def enabled(self, name: str) -> bool:
        return name not in self.disabled


ALL_RULES = RuleSet()


# ----------------------------------------------------------------------------------------------- echoes
_OPTION_LINE = re.compile(r"^\s*\(([A-Z])\)\s*\S.*$")


def echoed_options(text: str, choices: list[str]) -> str | None:
    """Rule ``echoed_options``: the response is nothing but two or more option lines ("(C) Yes\\n(D) No"),
    optionally after "Answer:"; the letter of the first (``re.findall(r'\\(([a-zA-Z])\\)', x)[0]`` in
    ``normalize_extracted_answer``)."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if lines and re.fullmatch(r"\s*(?:answer|choices|options?)\s*:?\s*", lines[0], re.I):
        lines = lines[1:]
    if len(lines) < 2 or not all(_OPTION_LINE.match(ln) for ln in lines):
        return None
    letter = _OPTION_LINE.match(lines[0]).group(1)  # type: ignore[union-attr]
    # a letter beyond the options ("(C) Yes\n(D) No" to a Yes/No question) is what the normaliser then matches
    # by edit distance, as it does with the official extraction
    return letter


_PROMPT_LINE = re.compile(r"^\s*(?:hint|question|choices|options)\s*[:：]", re.I)


def strip_question_echo(text: str, question: str | None, choices: list[str] | None) -> str:
    """Rule ``question_echo``: the response with the restated query removed — the question text wherever it is
    repeated, a "Hint:" line in MathVista's hint wording ("Please answer the question …"), a "Question:" line
    that is a question (ends with "?" or is empty once the question text is gone), and a "Choices:" line with
    the option lines that follow it. A prompt-like line that carries anything else is kept."""
    out = text
    q = (question or "").strip()
    if len(q) >= 12 and q in out:
        out = out.replace(q, " ")
    # [^\S\n]* (not \s*): \s* would run over a run of blank lines from every line start (quadratic)
    if not re.search(r"(?mi)^[^\S\n]*(?:hint|question|choices|options)[^\S\n]*[:：]", out):
        return out
    kept: list[str] = []
    in_choices = False
    for ln in out.splitlines():
        m = _PROMPT_LINE.match(ln)
        if m:
            head = ln[: m.end()].strip().lower()
            rest = ln[m.end() :].strip()
            if head.startswith(("choices", "options")) and not rest:
                in_choices = True
                continue
            in_choices = False
            if head.startswith("hint") and re.search(r"please answer|requiring|provide the", rest, re.I):
                continue
            if head.startswith("question") and (not rest or rest.endswith(("?", "？", "()", "（）"))):
                continue
            kept.append(ln)
            continue
        if in_choices and _OPTION_LINE.match(ln):
            continue
        in_choices = False
        kept.append(ln)
    return "\n".join(kept)


# ----------------------------------------------------------------------------------------------- options
_SYNONYMS = MappingProxyType(
    {
        # comparatives (MathVista's "larger than / equal to / smaller than" and "Is X greater than Y?")
        "greater": "larger",
        "bigger": "larger",
        "higher": "larger",
        "more": "larger",
        "above": "larger",
        "less": "smaller",
        "lower": "smaller",
        "fewer": "smaller",
        "below": "smaller",
        "same": "equal",
        "identical": "equal",
        "equals": "equal",
        # population changes (food-web questions)
        "increases": "increase",
        "increased": "increase",
        "rise": "increase",
        "rises": "increase",
        "grow": "increase",
        "grows": "increase",
        "up": "increase",
        "double": "increase",
        "decreases": "decrease",
        "decreased": "decrease",
        "decline": "decrease",
        "declines": "decrease",
        "drop": "decrease",
        "drops": "decrease",
        "fall": "decrease",
        "falls": "decrease",
        "down": "decrease",
        "shrink": "decrease",
        "remains": "remain",
        "stay": "remain",
        "stays": "remain",
        "unchanged": "equal",
        "constant": "equal",
        "change": "change",
    }
)
_STOP = frozenset(
    [
        "than",  # "larger than" vs "greater": the comparative carries the meaning
        "a",
        "an",
        "the",
        "it",
        "is",
        "are",
        "be",
        "would",
        "will",
        "to",
        "of",
        "in",
        "so",
        "i",
        "think",
        "answer",
        "option",
        "choice",
        "would",
        "most",
        "likely",
        "that",
        "this",
        "population",
        "number",
        "as",
        "and",
        "its",
        "it's",
        "go",
        "goes",
    ]
)
_NEGATION = re.compile(r"\b(?:not|no|never|n't|neither|nor|cannot)\b|n't\b", re.I)


def _tokens(s: str) -> list[str]:
    toks = re.findall(r"[a-z]+|\d+(?:\.\d+)?", s.lower().replace("n't", " not"))
    return [_SYNONYMS.get(t, t) for t in toks]


def _content(s: str) -> set[str]:
    return {t for t in _tokens(s) if t not in _STOP}


def option_by_value(span: str, choices: list[str]) -> int | None:
    """Rule ``option_value``: the one option whose text the span contains as whole words, or whose number the
    span states (``60 degrees`` → ``60°``); ``None`` if none or several."""
    if len(span) > 300:
        return None
    key = " " + re.sub(r"[^\w.%°√/+-]+", " ", span.lower()).strip(" .") + " "
    hits = []
    for i, c in enumerate(choices):
        ck = re.sub(r"[^\w.%°√/+-]+", " ", c.lower()).strip(" .")
        if ck and f" {ck} " in key:
            hits.append(i)
    hits = [
        h for h in hits if not any(h != o and choices[h].lower().strip() in choices[o].lower() for o in hits)
    ]
    if len(hits) == 1:
        return hits[0]
    if hits:
        return None
    nums = numbers_in(span)
    if len(nums) == 1:
        val = parse_number(nums[0])
        same = [
            i
            for i, c in enumerate(choices)
            if (cn := parse_number(c)) is not None and val is not None and abs(cn.value - val.value) < 1e-9
        ]
        if len(same) == 1:
            return same[0]
    return None


def option_by_paraphrase(span: str, choices: list[str]) -> int | None:
    """Rule ``option_paraphrase``: the option sharing the most content tokens with the span after synonyms
    ("greater" ≡ "larger", "go down" ≡ "decrease"); it must cover all of that option's content tokens and be
    the unique best. A negated span ("does not change") is left alone."""
    words = _content(span)
    if not words or len(span) > 200:
        return None
    negated = bool(_NEGATION.search(span))
    scores = []
    for c in choices:
        ct = _content(c)
        if not ct or (negated and "change" not in ct and not _NEGATION.search(c)):
            scores.append(0.0)
            continue
        inter = len(ct & words)
        scores.append(inter / len(ct) if inter == len(ct) else 0.0)
    best = max(scores)
    if best <= 0 or scores.count(best) > 1:
        return None
    return scores.index(best)


# ----------------------------------------------------------------------------------------------- yes / no
def yes_no_index(choices: list[str]) -> tuple[int, int] | None:
    keys = [c.strip().lower() for c in choices]
    if sorted(keys) != ["no", "yes"]:
        return None
    return keys.index("yes"), keys.index("no")


def yesno_statement(text: str, question: str | None) -> bool | None:
    """Rule ``yesno_statement``: for a yes/no question answered by a statement, True (yes) when the final
    statement affirms, False (no) when it is negated ("X is not the smoothest", "there are not fewer …");
    ``None`` when the response does not read as a statement about the question (no shared content words)."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text.strip()) if s.strip()]
    if not sentences:
        return None
    last = clean_span(sentences[-1])
    if not last or len(last) > 300 or "?" in sentences[-1]:
        return None
    if len(last.split()) < 3 or not re.search(
        r"\b(?:is|are|was|were|does|do|did|has|have|had|can|will|would|isn't|aren't|doesn't|don't)\b",
        last,
        re.I,
    ):
        return None  # a name or a phrase ("Coral") is not a statement: the extractor copies it
    q = _content(question or "")
    said = _content(last)
    if not q or len(q & said) < max(1, min(2, len(q) // 2)):
        return None  # not a statement about the question (or no question to compare with)
    return not bool(_NEGATION.search(last))


# ----------------------------------------------------------------------------------------------- refusals
def refusal_wording(text: str) -> str | None:
    """Rule ``refusal_wording``: the no-answer string MathVista's extractor writes for a refusal, by wording (as
    its development-file extractions record): a one- or two-sentence apology ("Sorry, …") is copied whole and a
    short "I can't …" becomes "N/A"; "… cannot be determined" → "Cannot be determined"; a request for more
    information, or "not possible to determine / cannot determine the correct option (letter)" → "N/A";
    ``None`` if the wording is none of these."""
    s = text.strip()
    sentences = [p for p in re.split(r"(?<=[.!?])\s+|\n+", s) if p.strip()]
    if not sentences:
        return None
    last = sentences[-1]
    if len(sentences) <= 2 and len(s) <= 160:
        if re.match(r"(?:sorry|i'?m sorry|i apologi[sz]e)", s, re.I):
            return s  # "Sorry, I can't help with images of people yet." is copied whole
        if re.match(r"i (?:can'?t|cannot|am unable to|'m unable to)\b", s, re.I):
            return "N/A"  # "I can't process this file." -> "N/A" (4 of 5 in the development files)
    if re.search(r"\bcannot be determined\b|\bcan't be determined\b", last, re.I):
        return "Cannot be determined"
    if re.search(r"\bcorrect (?:option|answer choice|choice)(?: letter)?\b", last, re.I) and re.search(
        r"not possible|cannot|can't|unable|impossible", last, re.I
    ):
        return "N/A"
    if re.match(r"(?:please|kindly)\s+(?:provide|share|upload|give)", last, re.I):
        return "N/A"
    return None


# ----------------------------------------------------------------------------------------------- numbers
NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
)  # NUMBER_WORDS[i] is i written as a word
_NUM = r"[-+]?\d[\d,]*(?:\.\d+)?"
_NUM_WORD = "|".join(NUMBER_WORDS)
_LEADING = re.compile(
    rf"^\s*(?:(?P<bare>{_NUM})\.?[ \t]*(?:\n|$)"  # "3" / "3." alone on the first line (not "1. First, …")
    rf"|(?:there\s+(?:are|is|were|was)|i\s+(?:see|count))\s+(?P<count>{_NUM}|{_NUM_WORD})\b[^.\n]{{0,120}}(?:[.\n]|$)"
    rf"|(?P<lead>{_NUM}|{_NUM_WORD})\s+(?!times\b|plus\b|minus\b|divided\b|multiplied\b|and\b|or\b|to\b|x\b|by\b)"
    r"[a-z]+\b[^\n]{0,120}?(?:[.\n]|$))",
    re.I,
)


def leading_answer(text: str) -> str | None:
    """Rule ``leading_answer``: the number a response opens with — a bare value on its own line ("3.\nThe bars
    …"), a count sentence ("There are 3 bars below 40.", "There are three bars …"), or a sentence that opens
    with its count ("3 bars are below 40.", "Three bars …") — else ``None``."""
    m = _LEADING.match(text)
    if not m:
        return None
    if m.group("lead") and re.fullmatch(r"1[89]\d\d|20\d\d", m.group("lead")):
        return None  # "2019 value was 7.84": a year opening the sentence is not its count
    tok = (m.group("bare") or m.group("count") or m.group("lead")).replace(",", "")
    return str(_WORDS[tok.lower()]) if tok.lower() in _WORDS else tok


_WORDS = MappingProxyType({w: i for i, w in enumerate(NUMBER_WORDS)})
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.I)


def number_word(span: str) -> str | None:
    """Rule ``number_words``: the integer a short answer states as a word (zero to twenty), when it states exactly
    one such value and no digits; ``None`` otherwise."""
    if len(span) > 150 or re.search(r"\d", span):
        return None
    found = {_WORDS[w.lower()] for w in _NUMBER_WORD.findall(span)}
    return str(found.pop()) if len(found) == 1 else None


_NO_OPTION = re.compile(
    r"(?:correct\s+(?:option|answer|choice)(?:\s+letter)?|answer)\s+is\s+not\s+(?:provided|given|listed|among|in)\b"
    r"|not\s+among\s+the\s+(?:given\s+)?(?:choices|options)|none\s+of\s+the\s+(?:given\s+|answer\s+)?(?:choices|options)",
    re.I,
)
_CONCLUDES = re.compile(r"^(?:therefore|thus|so|hence|rounded\b[^,]*)\b[ ,]", re.I)


def value_before_no_option(text: str) -> str | None:
    """Rule ``no_option_value``: when the last sentence says the correct option is not provided (or not among
    the choices) and the sentence before concludes a value ("Therefore, the length of AC is 2."), that value as
    written (a single token: ``35°``, ``√91``, ``2``); else ``None``."""
    sentences = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", text.strip()) if p.strip()]
    if len(sentences) < 2 or not _NO_OPTION.search(sentences[-1]):
        return None
    prev = sentences[-2]
    if not _CONCLUDES.match(prev):
        return None
    tail = re.split(r"\s(?:is|are|equals|=)\s|=", prev)[-1]
    value = clean_span(tail)
    if not value or len(value) > 12 or " " in value or not re.search(r"\d", value):
        return None
    return value


_LETTER_STATEMENT = re.compile(
    r"(?:^|[.!?\n]\s*)(?:option\s+|choice\s+)?\(?(?P<a>[A-H])\)?\s+(?:is|seems|looks)\s+(?:the\s+)?(?:most\s+)?"
    r"(?:correct|right|best|answer|true)\b"
    r"|\b(?:choose|chose|pick|picked|select|selected|go\s+with|opt\s+for)\s+(?:option\s+|choice\s+)?\(?(?P<b>[A-H])\)?(?![\w'])",
)


def letter_statement(text: str, n_choices: int) -> str | None:
    """Rule ``letter_statement``: the option letter of the last "B is correct" / "I choose C" in the response's
    final 400 characters, if it names one of the options."""
    last = None
    for m in _LETTER_STATEMENT.finditer(text[-400:]):
        letter = m.group("a") or m.group("b")
        if ord(letter) - 65 < n_choices:
            last = letter
    return last

"""Pull the final answer out of a free-text response.

Order of precedence (the first that applies wins; within each, the *last* occurrence in the response):

1. ``<answer>…</answer>`` (a ``\\boxed{}`` inside it is unwrapped);
2. ``\\boxed{…}`` / ``\\fbox{…}`` with nested braces (``\\boxed{\\frac{1}{2}}``);
3. an answer phrase: "the (final/correct) answer is …", "Answer: …", "the correct option is …", "答案是…";
4. the last bold span (``**…**``), the way chat models mark their result;
5. type-specific fallbacks — multiple choice: a response that *is* an option ("B", "(B)", "B. text", a choice's
   text), the last "(B)" near the end, or the one choice text named in the last sentence; numbers: the number a
   concluding sentence ("Therefore …", "So …") states, else the last number of the response.

Every scan is a regex without nested quantifiers or a single linear pass, so 10,000-character responses and
pathological nesting cost milliseconds.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mssr.rewards.text import clean_span, normalize_text, numbers_in, to_text

#: answer sources that delimit the answer explicitly (what ``require_clean_end`` accepts)
DELIMITED_SOURCES = frozenset({"boxed", "answer_tag"})


@dataclass(frozen=True)
class Extraction:
    """An extracted answer. ``end`` is the offset just past the answer in the response (clean-end checks)."""

    text: str
    source: (
        str  # boxed | answer_tag | phrase | bold | option | choice_text | conclusion | last_number | whole
    )
    end: int


# ----------------------------------------------------------------------------------------------- delimited
_BOX_CMD = re.compile(r"\\(?:boxed|fbox)\b\s*")


def _brace_pairs(text: str) -> dict[int, int]:
    """Map each ``{`` offset to the offset just past its matching ``}``, in one linear pass with a stack.

    No recursion and no rescans, so 100,000 nested or 2,000 unclosed braces cost one pass; escaped braces
    ``\\{`` ``\\}`` are content.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            pairs[stack.pop()] = i + 1
        i += 1
    return pairs


def _boxes(text: str) -> list[tuple[str, int, int]]:
    """Every complete ``\\boxed{…}`` / ``\\fbox{…}`` / ``\\boxed x``: (content, start, end), in order."""
    starts = list(_BOX_CMD.finditer(text))
    if not starts:
        return []
    pairs = _brace_pairs(text)
    out = []
    for m in starts:
        j = m.end()
        if j < len(text) and text[j] == "{":
            end = pairs.get(j)
            if end is not None:
                out.append((text[j + 1 : end - 1], m.start(), end))
        else:
            tok = re.match(r"[^\s$\\]+", text[j : j + 200])
            if tok:
                out.append((tok.group(0), m.start(), j + tok.end()))
    return out


def last_boxed(text: str) -> tuple[str, int, int] | None:
    """Content, start and end offsets of the last complete ``\\boxed{…}`` (or ``\\boxed x``) in ``text``."""
    boxes = _boxes(text)
    return boxes[-1] if boxes else None


_ANSWER_OPEN = re.compile(r"<answer>", re.I)
_ANSWER_CLOSE = re.compile(r"</answer>", re.I)


def answer_tags(text: str) -> list[tuple[str, int, int]]:
    """Content, start and end offsets of every ``<answer>…</answer>`` pair, as ``<answer>(.*?)</answer>``
    (case-insensitive) finds them left to right. Linear in the text: each search starts where the last pair
    ended, and an opening tag without a closing one ends the scan (``finditer`` over the lazy pattern was
    quadratic in repeated opening tags)."""
    found, pos = [], 0
    while (o := _ANSWER_OPEN.search(text, pos)) is not None:
        c = _ANSWER_CLOSE.search(text, o.end())
        if c is None:
            break
        found.append((text[o.end() : c.start()], o.start(), c.end()))
        pos = c.end()
    return found


def last_answer_tag(text: str) -> tuple[str, int, int] | None:
    """Content, start and end offsets of the last ``<answer>…</answer>``."""
    tags = answer_tags(text)
    return tags[-1] if tags else None


# ----------------------------------------------------------------------------------------------- phrases
_PHRASE = re.compile(
    r"(?:\b(?:final\s+answer|correct\s+answer|correct\s+option(?:\s+letter)?|correct\s+choice|best\s+answer"
    r"|the\s+answer|answer|option\s+letter|final\s+value|final\s+result)"
    r"(?:\s+to\s+(?:the|this)\s+question)?"
    r"(?:\s*(?:is|would\s+be|should\s+be|will\s+be|must\s+be|=|:|：)|\s*\n)"
    r"|答案(?:是|为|應為|应为|:|：)|(?:正确|对应)?选项(?:是|为|:|：)|故选|所以选|应选)"
    r"[ \t]*(?:[:：])?[ \t]*",
    re.I,
)
_SENTENCE_END = re.compile(r"(?<![\d.])[.!?](?=\s|$)|[。！？，；]|\n")
_MAX_SPAN = 300


def _span_after(text: str, pos: int) -> str:
    """The answer sentence that starts at ``pos``: up to the sentence end or line break (max 300 chars)."""
    rest = text[pos : pos + _MAX_SPAN]
    stripped = rest.lstrip()
    if not stripped:
        return ""
    m = _SENTENCE_END.search(stripped)
    return stripped[: m.start()] if m else stripped


_HYPOTHETICAL = re.compile(
    r"(?:^|[.!?\n]\s*)(?:if|otherwise|assuming|suppose|when|unless|whether)\b[^.!?\n]*\Z", re.I
)


def _hypothetical(text: str, pos: int) -> bool:
    """Is ``pos`` inside a conditional sentence ("If x > y, then the answer is (A) Yes. Otherwise, …")?"""
    return bool(_HYPOTHETICAL.search(text[max(0, pos - 300) : pos]))


def last_phrase(text: str) -> tuple[str, int] | None:
    """The span after the last answer phrase (skipping conditional sentences), and its end offset."""
    found = None
    for m in _PHRASE.finditer(text):
        if _hypothetical(text, m.start()):
            continue
        span = clean_span(_span_after(text, m.end()))
        if span:
            found = (span, m.end() + len(span))
    return found


_BOLD = re.compile(r"\*\*([^*\n]{1,120})\*\*")


def last_bold(text: str) -> tuple[str, int] | None:
    last = None
    for m in _BOLD.finditer(text):
        last = m
    if last is None:
        return None
    span = clean_span(last.group(1))
    return (span, last.end()) if span else None


# ----------------------------------------------------------------------------------------------- options
OPTION_LETTER = re.compile(
    r"^\s*(?:option|choice|answer)?\s*[(\[]?\s*([A-Za-z])\s*[)\]]?(?:\s*[.:)]|\s+|$)(.*)$", re.S | re.I
)


def option_letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


def letter_of(span: str, choices: list[str] | None) -> str | None:
    """The option letter a span names: "B", "(B)", "B.", "B) text", "Option B", "(b) text"; else ``None``.

    A bare lower-case word like "a" only counts when it is alone; "A text" must match the text of option A
    (or be short) so that an answer starting with the article "A" is not read as option A.
    """
    m = OPTION_LETTER.match(span)
    if not m:
        return None
    letter, tail = m.group(1), m.group(2).strip()
    raw = span.strip()
    bracketed = bool(re.match(r"^\s*(?:option|choice|answer)?\s*[(\[]", raw, re.I))
    explicit = bool(re.match(r"^\s*(?:option|choice)\s", raw, re.I))
    if letter.islower() and not (bracketed or explicit or not tail):
        return None
    letter = letter.upper()
    if choices is not None and letter not in option_letters(len(choices)):
        return None
    if not tail or bracketed or explicit:
        return letter
    # "B. text" / "B: text" / "B) text" / "B (text)": punctuation or a bracket right after the letter
    if re.match(r"^\s*[A-Za-z]\s*[.:)]|^\s*[A-Z]\s+\(", raw):
        return letter
    return None


_PAREN_LETTER = re.compile(r"\(([A-H])\)")


def _choice_named_in(sentence: str, choices: list[str]) -> str | None:
    """The one choice whose text appears as a whole phrase in ``sentence`` (None if zero or several)."""
    # a sentence ending "… is 5." keeps its full stop (not split after a digit): strip it before matching
    key = " " + re.sub(r"[^\w.%°√/+-]+", " ", sentence.lower()).strip(" .") + " "
    hits = []
    for c in choices:
        ck = re.sub(r"[^\w.%°√/+-]+", " ", c.lower()).strip()
        if ck and f" {ck} " in key:
            hits.append(c)
    # drop choices contained in a longer hit ("quarter" inside "quarter past")
    hits = [h for h in hits if not any(h != o and h.lower() in o.lower() for o in hits)]
    return hits[0] if len(hits) == 1 else None


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<![\d.])[.。!?！？](?=\s|$)|\n+", text) if s.strip()]


_CONCLUSION = re.compile(r"^(?:therefore|thus|so|hence|in conclusion|overall|finally|consequently)\b", re.I)
_COPULA = re.compile(r"(?:\bis|\bare|\bequals?|\bbe|=|≈|\bof|\bwas|\bwere|\bget)\s", re.I)


def _number_of_sentence(sentence: str) -> str | None:
    """The number a sentence states: the first one after its last "is/are/=", else its last number."""
    best = None
    for m in _COPULA.finditer(sentence):
        nums = numbers_in(sentence[m.end() :])
        if nums:
            best = nums[0]
    if best is not None:
        return best
    nums = numbers_in(sentence)
    return nums[-1] if nums else None


def number_of_span(span: str) -> str | None:
    """The number an answer span states: right of its last ``=``, else its first number."""
    tail = span.rsplit("=", 1)[-1]
    nums = numbers_in(tail) or numbers_in(span)
    return nums[0] if nums else None


# ----------------------------------------------------------------------------------------------- main entry
def extract_answer(
    response: object, *, choices: list[str] | None = None, answer_type: str | None = None
) -> Extraction | None:
    """The final answer of ``response`` (see module docstring), or ``None`` if it states none.

    ``choices`` enables the multiple-choice fallbacks; ``answer_type`` in {"integer", "float"} enables the
    numeric ones. The returned text is the span as written (cleaned of markdown/math delimiters), not yet
    normalised; multiple-choice letters are returned bare ("B").
    """
    text = to_text(response)
    tag = last_answer_tag(text)
    if tag is not None:
        inner = last_boxed(tag[0])
        span = clean_span(inner[0] if inner else tag[0])
        return Extraction(_canon_option(span, choices), "answer_tag", tag[2])
    box = last_boxed(text)
    if box is not None:
        return Extraction(_canon_option(clean_span(box[0]), choices), "boxed", box[2])
    for finder, source in ((last_phrase, "phrase"), (last_bold, "bold")):
        hit = finder(text)
        if hit is not None:
            return Extraction(_canon_option(hit[0], choices), source, hit[1])
    if choices:
        return _choice_fallback(text, choices)
    if answer_type in ("integer", "float"):
        return _number_fallback(text)
    whole = clean_span(text)
    if whole and len(whole) <= 100 and "\n" not in whole:
        return Extraction(whole, "whole", len(text))
    return _number_fallback(text)


def _canon_option(span: str, choices: list[str] | None) -> str:
    """For multiple choice, "(B) text" / "B." / "Option B" become "B", and a span that opens with one choice's
    text ("no, there are not …", "definitely yes") becomes that text; anything else is returned as is."""
    if not choices:
        return span
    if span in choices:
        return span
    span_n = unicodedata.normalize("NFKC", span)
    letter = letter_of(span_n, choices)
    if letter is not None:
        return letter
    m = _PAREN_LETTER.search(span_n)  # "is (B) 8/11" -> B
    if m and m.group(1) in option_letters(len(choices)):
        return m.group(1)
    clause = re.split(r"[,;:，；]", span_n, maxsplit=1)[0]
    if clause != span_n or len(clause.split()) <= 3:
        named = _choice_named_in(clause, choices)
        if named is not None:
            return named
    return span


def _choice_fallback(text: str, choices: list[str]) -> Extraction | None:
    whole = clean_span(text)
    if whole in choices or (
        len(whole) <= 200 and normalize_text(whole) in {normalize_text(c) for c in choices}
    ):
        return Extraction(whole, "whole", len(text))
    letter = letter_of(whole, choices) if len(whole) <= 200 else None
    if letter is None:
        head = clean_span(text.lstrip()[:120].split("\n", 1)[0])
        m = re.match(r"^\(?([A-H])\)?(?:[.:)]\s|\s*$)", head)
        if m and m.group(1) in option_letters(len(choices)):
            letter = m.group(1)
    if letter is not None:
        return Extraction(letter, "option", len(text))
    tail = text[-300:]
    last = None
    for m in _PAREN_LETTER.finditer(tail):
        if m.group(1) in option_letters(len(choices)) and not _hypothetical(tail, m.start()):
            last = m
    if last is not None:
        return Extraction(last.group(1), "option", len(text) - len(tail) + last.end())
    sentences = _sentences(text)
    for sentence in reversed(sentences[-3:]):
        if re.match(r"(?:if|otherwise|assuming|suppose|unless|when|whether)\b", sentence, re.I):
            continue
        named = _choice_named_in(sentence, choices)
        if named is not None:
            return Extraction(named, "choice_text", len(text))
    return None


def _number_fallback(text: str) -> Extraction | None:
    sentences = _sentences(text)
    for sentence in reversed(sentences):
        if _CONCLUSION.match(sentence):
            num = _number_of_sentence(sentence)
            if num is not None:
                return Extraction(num, "conclusion", len(text))
            break
    nums = numbers_in(text[-2000:], limit=10_000)
    if nums:
        return Extraction(nums[-1], "last_number", len(text))
    return None


def answer_statements(
    response: object, choices: list[str] | None = None, answer_type: str | None = None
) -> list[str]:
    """Every explicit answer the response states (answer tags, boxes, answer phrases outside conditionals),
    canonicalised like :func:`extract_answer` does; used to tell ambiguous responses apart."""
    text = to_text(response)
    spans: list[str] = [t[0] for t in answer_tags(text)]
    spans.extend(b[0] for b in _boxes(text))
    for m in _PHRASE.finditer(text):
        if not _hypothetical(text, m.start()):
            spans.append(_span_after(text, m.end()))
    out = []
    for s in spans:
        s = clean_span(s)
        if not s:
            continue
        if answer_type in ("integer", "float") and not choices:
            s = number_of_span(s) or s
        out.append(_canon_option(s, choices))
    return out

"""Synthetic MathVista responses files in the response styles that defeat rule-based graders, each row carrying
the ``extraction`` the official pipeline would produce and the ``true_false`` its scorer derives from it.

**These verdicts are synthetic**, derived from the official pipeline's published rules, not from running it:

* MathVista's ``extract_answer.py`` returns ``""`` for an empty response, the response itself when it is one of
  the choices, and ``int(response)`` / ``float(response)`` when the response reads as one; otherwise an LLM
  (GPT-4) is prompted with the demo prompt of ``prompts/ext_ans.py`` — five examples that copy the final value
  as written ("The number missing in the sequence is 14." → ``14``, "Luca needs $1.45 …" → ``1.45``, "… between
  2007 and 2008." → ``[2007, 2008]``) and answer an option statement with its letter ("The correct answer is (B)
  8/11." → ``B``) — followed by the problem's query (hint, question, choices) and the response.
* ``calculate_score.py``: ``normalize_extracted_answer`` (multiple choice: the first ``(X)`` in the extraction
  picks option X, a bare letter picks its option, anything else the option at the smallest Levenshtein distance,
  ties to the first; integer: ``int``; float: ``round(float(x), precision)``), then ``safe_equal``
  (``prediction == answer``).

What the LLM extractor writes for each style is the assumption this module documents per style
(:data:`STYLES`); where the development files show the extractor's habit for a wording (refusals), the
wording → extraction pairs follow what those files record. Verdicts are then computed with mssr's
reimplementation of the normaliser (:func:`mssr.rewards.equivalence.mathvista_normalize`), which reproduces the
3,000 official predictions of the development files exactly (``tests/evaluation/test_grade.py``).

``make_file(problems, style, seed)`` builds one file (pid → row, MathVista's layout plus ``"synthetic": style``);
``make_all`` builds one file per style. Deterministic for a seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from mssr.rewards.equivalence import mathvista_normalize
from mssr.rewards.official_rules import NUMBER_WORDS

Row = dict[str, Any]
# (response, official extraction) for one problem and one intended answer, or None if the style does not apply
Maker = Callable[[Row, "_Target", random.Random], "tuple[str, str] | None"]


class _Target:
    """The answer a synthetic response states: its option index (multiple choice) or its value as written."""

    def __init__(self, problem: Row, rng: random.Random, correct: bool):
        self.choices: list[str] | None = problem.get("choices") or None
        self.correct = correct
        if self.choices:
            gold = self.choices.index(problem["answer"])
            others = [i for i in range(len(self.choices)) if i != gold]
            self.index = gold if correct or not others else rng.choice(others)
            self.text = self.choices[self.index]
            self.letter = chr(ord("A") + self.index)
        else:
            self.index, self.letter = -1, ""
            self.text = _value(problem, rng, correct)


def _value(problem: Row, rng: random.Random, correct: bool) -> str:
    ans = str(problem["answer"])
    if correct:
        return ans
    if problem["answer_type"] == "integer":
        return str(int(ans) + rng.choice([-3, -2, -1, 1, 2, 5, 10]))
    if problem["answer_type"] == "float":
        prec = int(problem.get("precision") or 1)
        return f"{float(ans) + rng.choice([-1, 1]) * 10**-prec * rng.choice([1, 2, 7]):.{prec}f}"
    return ans + "0"


def query_of(problem: Row) -> str:
    """The query MathVista's extractor sees (hint, question, choices), in its ``build_query`` format."""
    if problem.get("choices"):
        hint = (
            "Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
        )
        opts = "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(problem["choices"]))
        return f"Hint: {hint}\nQuestion: {problem['question']}\nChoices:\n{opts}"
    atype = problem["answer_type"]
    if atype == "integer":
        hint = "Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end."
    elif atype == "float":
        hint = "Please answer the question requiring a floating-point number and provide the final value, e.g., 1.2, 1.3, 1.4, at the end."
    else:
        hint = "Please answer the question requiring a Python list as an answer and provide the final list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end."
    return f"Hint: {hint}\nQuestion: {problem['question']}"


def _intermediate(rng: random.Random, k: int) -> list[str]:
    out = []
    for _ in range(k):
        a, b = rng.randint(2, 90), rng.randint(2, 90)
        op, val = rng.choice([("+", a + b), ("-", a - b), ("\\times", a * b)])
        out.append(
            rng.choice(
                [
                    f"First, we compute ${a} {op} {b} = {val}$.",
                    f"The next step gives {a} {op.strip(chr(92))} {b} = {val}.",
                    f"From the figure, one part measures {a} and another {b}, which gives {val}.",
                    f"Note that {val} is not yet the final value.",
                ]
            )
        )
    return out


# ----------------------------------------------------------------------------------------------- styles
def _echo_options(p: Row, t: _Target, rng: random.Random) -> tuple[str, str] | None:
    """Two or three consecutive options echoed, one per line ("(C) Yes\\n(D) No"). The extractor copies them (or
    their first letter); the normaliser's ``re.findall(r'\\(([a-zA-Z])\\)')[0]`` takes the **first** echoed option."""
    ch = t.choices
    if not ch or len(ch) < 2:
        return None
    k = rng.choice([2, 3]) if len(ch) >= 3 else 2
    start = t.index if t.index + k <= len(ch) else len(ch) - k
    shift = 2 if len(ch) == 2 and rng.random() < 0.3 else 0  # "(C) Yes\n(D) No" to a two-option question
    lines = [f"({chr(65 + i + shift)}) {ch[i]}" for i in range(start, start + k)]
    text = "\n".join(lines)
    return rng.choice([text, f"Answer:\n{text}", f"{text}\n"]), text


def _option_text(p: Row, t: _Target, rng: random.Random) -> tuple[str, str] | None:
    """The option's text instead of its letter, alone or in a sentence; the extractor copies the text (demo:
    values are copied as written) and the normaliser's nearest option is that option."""
    if not t.choices:
        return None
    text = t.text.strip()
    resp = rng.choice(
        [
            text,
            f"The answer is {text}.",
            f"It is {text}.",
            f"I think the correct choice is {text}.",
            f"{text}.",
        ]
    )
    return resp, text


_PARAPHRASE = {
    "larger than": ["greater than", "bigger than", "higher than"],
    "smaller than": ["less than", "lower than"],
    "equal to": ["the same as", "exactly equal"],
    "increase": ["go up", "rise", "grow"],
    "decrease": ["go down", "decline", "drop"],
    "remain the same": ["stay the same", "not change"],
    "remains the same": ["stays the same", "does not change"],
    "stay the same": ["remain unchanged", "not change"],
}


def _paraphrase(p: Row, t: _Target, rng: random.Random) -> tuple[str, str] | None:
    """A paraphrase of the option ("greater than" for "larger than", "60 degrees" for "60°"). The extractor sees
    the choices in the query and names the option meant: its letter (the demo's option example)."""
    if not t.choices:
        return None
    key = t.text.strip().lower()
    if key in _PARAPHRASE:
        para = rng.choice(_PARAPHRASE[key])
    elif re.fullmatch(r"\d+(?:\.\d+)?°", t.text.strip()):
        para = t.text.strip()[:-1] + " degrees"
    else:
        return None
    others = [c.strip().lower() for i, c in enumerate(t.choices) if i != t.index]
    if any(para in o or o in para for o in others):
        return None
    resp = rng.choice(
        [f"The answer is {para}.", f"It would {para}.", f"So it is {para}.", f"{para[0].upper()}{para[1:]}."]
    )
    return resp, t.letter


def _yes_no(t: _Target) -> bool | None:
    if not t.choices or sorted(c.strip().lower() for c in t.choices) != ["no", "yes"]:
        return None
    return t.text.strip().lower() == "yes"


_COMPARATIVE = r"(?:greater|less|larger|smaller|more|fewer|higher|lower|bigger|equal)\b"


def _statement(p: Row, yes: bool) -> str | None:
    """The question "Is X the smoothest?" as a statement ("X is (not) the smoothest"), for the forms MathVista's
    yes/no questions take; ``None`` for other forms."""
    q = p["question"].strip().rstrip("?").strip()
    if len(q) > 160:
        return None
    neg = "" if yes else "not "
    m = re.match(r"^(Are|Is) there\s+(.+)$", q, re.I)
    if m:
        return f"There {m.group(1).lower()} {neg}{m.group(2)}"
    m = re.match(r"^(Does|Do)\s+(.+?)\s+have\s+(.+)$", q, re.I)
    if m:
        subj = m.group(2)
        verb = (
            ("has" if m.group(1).lower() == "does" else "have") if yes else f"{m.group(1).lower()} not have"
        )
        return f"{subj[0].upper()}{subj[1:]} {verb} {m.group(3)}"
    m = re.match(r"^(Is|Are|Was|Were)\s+(.+?)\s+(" + _COMPARATIVE + r".*)$", q, re.I) or re.match(
        r"^(Is|Are|Was|Were)\s+(.+?)\s+((?:the|a|an)\s+.*)$", q, re.I
    )
    if not m:
        return None
    subj = m.group(2)
    return f"{subj[0].upper()}{subj[1:]} {m.group(1).lower()} {neg}{m.group(3)}"


def _yesno_sentence(p: Row, t: _Target, rng: random.Random) -> tuple[str, str] | None:
    """A full-sentence yes/no answer ("No, Coral is not the roughest."). The extractor writes the option: Yes/No
    as the choices spell it."""
    yes = _yes_no(t)
    if yes is None:
        return None
    st = _statement(p, yes) or ("it is" if yes else "it is not")
    word = "Yes" if yes else "No"
    resp = rng.choice(
        [f"{word}, {st[0].lower()}{st[1:]}.", f"{word}. {st[0].upper()}{st[1:]}.", f"{word.lower()}, {st}"]
    )
    return resp, t.text


def _negated(p: Row, t: _Target, rng: random.Random) -> tuple[str, str] | None:
    """A declarative statement without yes/no ("Coral is not the roughest."): negated means the opposite option
    (No), affirmed means Yes; the extractor writes that option."""
    yes = _yes_no(t)
    if yes is None:
        return None
    st = _statement(p, yes)
    if st is None:
        return None
    resp = rng.choice(
        [
            f"{st}.",
            f"Looking at the image, {st[0].lower()}{st[1:]}.",
            f"Based on the graph, {st[0].lower()}{st[1:]}.",
        ]
    )
    return resp, t.text


# wording -> what the development files record the extractor writing for it (chatgpt file: "Cannot be
# determined" x24, "N/A" x127 for requests for more information; bard file: "Sorry, …" copied verbatim,
# "I can't process this file." -> "N/A" 4 times of 5)
_REFUSALS = [
    ("Sorry, I can't help with images of people yet.", "Sorry, I can't help with images of people yet."),
    ("I can't process this file.", "N/A"),
    ("{cot} Therefore, the answer cannot be determined.", "Cannot be determined"),
    ("{cot} Without the figure, it is not possible to determine the correct option letter.", "N/A"),
    ("{cot} Please provide the figure or more information to answer the question.", "N/A"),
]


def _refusal(p: Row, t: _Target, rng: random.Random) -> tuple[str, str] | None:
    """Refusals and "cannot be determined": the extractor writes a no-answer string (the wording → string pairs the
    development files record); the normaliser maps it to the nearest option (multiple choice) or no prediction."""
    tpl, ext = rng.choice(_REFUSALS)
    cot = " ".join(_intermediate(rng, rng.randint(0, 2))) if "{cot}" in tpl else ""
    return tpl.format(cot=cot).strip(), ext


def _empty(p: Row, t: _Target, rng: random.Random) -> tuple[str, str] | None:
    """An empty response: the official quick rule returns ``""`` (multiple choice: the nearest option to ``""`` is
    the first shortest one)."""
    return "", ""


def _question_echo(p: Row, t: _Target, rng: random.Random) -> tuple[str, str] | None:
    """The response restates the query (hint, question, choices; numbers included) and then answers; the
    extractor takes the stated answer, never a number of the restated question."""
    q = query_of(p) if rng.random() < 0.5 else f"Question: {p['question']}"
    if t.choices:
        ans = rng.choice(
            [f"Answer: ({t.letter}) {t.text}", f"The answer is ({t.letter}).", f"Answer: {t.letter}"]
        )
        return f"{q}\n{ans}", t.letter
    if p["answer_type"] == "list":
        return None
    ans = rng.choice([f"Answer: {t.text}", f"The answer is {t.text}.", f"{t.text}"])
    return f"{q}\n\n{ans}", t.text


_FINAL_NUM = [
    "Therefore, the final answer is {v}.",
    "So the answer is {v}.",
    "Final answer: {v}",
    "Thus, the value we are looking for is {v}.",
    "Hence, the result is {v}.",
    "The final value is {v}.",
    "Therefore, there are {v} in total.",
    "So we get {v}.",
]
_FINAL_MC = [
    "Therefore, the correct option is ({l}).",
    "So the answer is ({l}) {x}.",
    "The correct answer is {l}.",
    "Final answer: ({l}) {x}",
    "Hence, the answer is option {l}.",
]


def _cot(p: Row, t: _Target, rng: random.Random) -> tuple[str, str] | None:
    """A long chain of thought with many intermediate numbers and the final answer stated once at the end
    (sometimes followed by a closing pleasantry); the extractor writes that final value as stated (an option
    statement: its letter)."""
    if p["answer_type"] == "list":
        return None
    steps = _intermediate(rng, rng.randint(3, 7))
    if t.choices:
        final, ext = rng.choice(_FINAL_MC).format(l=t.letter, x=t.text), t.letter
    elif rng.random() < 0.25:  # the answer first, then an explanation full of other numbers
        lead = rng.choice([f"{t.text}\n\nExplanation:", f"There are {t.text} of them in the image."])
        return lead + "\n" + "\n".join(steps), t.text
    else:
        final, ext = rng.choice(_FINAL_NUM).format(v=t.text), t.text
    tail = rng.choice(["", "", "\n\nI hope this helps!", "\n\nLet me know if you have other questions."])
    return "Let's think step by step.\n" + "\n".join(steps) + "\n" + final + tail, ext


def _program(p: Row, t: _Target, rng: random.Random) -> tuple[str, str] | None:
    """Program-of-thought: Python whose printed result is the answer, computed from intermediate literals (the
    answer itself appears nowhere in the code), sometimes followed by its output. MathVista runs such a
    response (``generate_response.py``, ``evaluate_code``) and the extractor reads the printed output: the
    answer as Python prints it."""
    if t.choices or p["answer_type"] == "list":
        return None
    a, k = rng.randint(2, 50), rng.randint(3, 40)
    if p["answer_type"] == "integer":
        v = int(t.text)
        code = f"a = {a}\nb = {v + k * a}\nc = {k}\nanswer = b - c * a\nprint(answer)"
        printed = str(v)
    else:
        prec = int(p.get("precision") or 1)
        v = float(t.text)
        code = (
            f"import math\ntotal = {v + k:.{prec}f}\nshift = {k}\n"
            f"answer = round(total - shift, {prec})\nprint(answer)"
        )
        printed = str(round(round(v + k, prec) - k, prec))
    resp = rng.choice(
        [
            f"```python\n{code}\n```",
            f"```python\n{code}\n```\nOutput: {printed}",
            f"# Python code\n{code}",
            f"Let me write a program.\n```python\n{code}\n```",
        ]
    )
    return resp, printed


def _number_words(p: Row, t: _Target, rng: random.Random) -> tuple[str, str] | None:
    """An integer answer written as a word ("There are three people in the image."); the extractor, whose hint
    asks for an integer, writes its digits."""
    if t.choices or p["answer_type"] != "integer" or not t.text.lstrip("-").isdigit() or int(t.text) > 12:
        return None
    if int(t.text) < 0:
        return None
    w = NUMBER_WORDS[int(t.text)]
    resp = rng.choice(
        [
            f"There are {w} of them in the image.",
            f"{w.capitalize()}.",
            f"The answer is {w}.",
            f"I can see {w}.",
        ]
    )
    return resp, t.text


#: style -> (maker, what the official extractor is assumed to write; see each maker's docstring)
STYLES: dict[str, Maker] = {
    "echo_options": _echo_options,
    "option_text": _option_text,
    "paraphrase": _paraphrase,
    "yesno_sentence": _yesno_sentence,
    "negated": _negated,
    "refusal": _refusal,
    "empty": _empty,
    "question_echo": _question_echo,
    "cot_final": _cot,
    "program": _program,
    "number_words": _number_words,
}


def make_file(
    problems: dict[str, Row], style: str, seed: int = 0, limit: int | None = None
) -> dict[str, Row]:
    """One synthetic responses file: ``pid -> {response, extraction, prediction, true_false, synthetic}`` for every
    problem the style applies to (at most ``limit``), the response right about half of the time."""
    maker = STYLES[style]
    rng = random.Random(f"{style}:{seed}")
    out: dict[str, Row] = {}
    for pid in sorted(problems, key=lambda k: (len(k), k)):
        p = problems[pid]
        made = maker(p, _Target(p, rng, rng.random() < 0.5), rng)
        if made is None:
            continue
        response, extraction = made
        precision = p.get("precision")
        pred = mathvista_normalize(
            extraction,
            p.get("choices"),
            p["question_type"],
            p["answer_type"],
            None if precision is None else int(precision),
        )
        out[pid] = {
            "response": response,
            "extraction": extraction,
            "prediction": pred,
            "true_false": pred == p["answer"],
            "synthetic": style,
        }
        if limit is not None and len(out) >= limit:
            break
    return out


def make_all(problems: dict[str, Row], seed: int = 0, limit: int | None = None) -> dict[str, dict[str, Row]]:
    """``style -> file`` for every style of :data:`STYLES`."""
    return {s: make_file(problems, s, seed, limit) for s in STYLES}

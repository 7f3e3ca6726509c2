"""Regrade a system's published responses to a benchmark (``mssr grade``): accuracy, agreement with the
benchmark's own verdicts, breakdowns, and a classified list of disagreements.

The responses are read by the benchmark's adapter (:meth:`~mssr.evaluation.benchmarks.Benchmark.load_responses`,
the same reader as ``mssr eval`` uses for its problems) and verified by mssr's verifier (``mssr.rewards``).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from mssr.evaluation.benchmarks.base import Benchmark, GradeItem, get
from mssr.rewards.extract import answer_statements
from mssr.rewards.official_rules import NUMBER_WORDS
from mssr.rewards.runner import get_runner
from mssr.rewards.text import numbers_in, parse_number
from mssr.rewards.verify import MAX_RESPONSE_CHARS, is_refusal

#: disagreement classes, in the order they are tested
CLASSES = {
    "same_extraction": "same answer extracted, different scoring rule (official: our normalisation miss)",
    "refusal_fuzzy": "refusal/no answer mapped to an option by edit distance",
    "official_untraceable": "official extraction names an answer (option letter, option text or value) that the "
    "response never writes: no rule over the response text can reproduce it",
    "degenerate": "degenerate response (prompt echo or repetition)",
    "ambiguous": "response states several different answers",
    "official_contradicts": "official extraction contradicts the response's single explicit answer",
    "extraction_miss": "our extraction miss (no explicit answer statement; picked another)",
    "unclassified": "no official extraction in the file to compare with",
}


def _grade_one(benchmark: str, mode: str, item: GradeItem) -> dict[str, Any]:
    fmt = get(benchmark)
    v = fmt.verify_response(item, mode)
    off = v if mode == "official" else fmt.verify_response(item, "official")
    return {
        "correct": v.correct,
        "extracted": v.extracted,
        "reason": v.reason,
        "official_mode_extracted": off.extracted,
    }


@dataclass
class GradeReport:
    benchmark: str
    mode: str
    n: int
    n_correct: int
    n_with_official: int
    n_agree: int
    n_official_correct: int
    n_timeouts: int
    n_errors: int
    elapsed_s: float
    backend: str
    breakdown: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n if self.n else 0.0

    @property
    def agreement(self) -> float | None:
        return self.n_agree / self.n_with_official if self.n_with_official else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["accuracy"], d["agreement"] = self.accuracy, self.agreement
        return d


def _is_degenerate(text: str) -> bool:
    if re.search(
        r"(?:^|\n)[^\S\n]*(?:Hint:|Question:|Choices:)", text
    ):  # (not \s*: quadratic in blank lines)
        return True
    lines = [ln.strip() for ln in text.splitlines() if len(ln.strip()) > 10]
    return any(c >= 3 for c in Counter(lines).values())


def _untraceable(fmt: Benchmark, item: GradeItem) -> bool:
    """Does the official extraction name an answer the response never writes? For multiple choice: the option
    it normalises to appears neither as "(X)", nor as an answer-form letter ("answer is X", "X." opening a line),
    nor by its text; for a number: no number (or number word) of the response has its value. A no-answer string
    or free text is never called untraceable."""
    ex = (item.official_extraction or "").strip()
    text = item.response
    if not ex or is_refusal(ex) or re.search(r"no answer|not provided|^none$", ex, re.I):
        return False
    if item.choices:
        pred = fmt.official_prediction(item, ex)
        if pred not in item.choices:
            return False
        letter = chr(65 + item.choices.index(pred))
        if re.search(rf"\(\s*{letter}\s*\)", text) or re.search(
            rf"(?:answer|option|choice)\s*(?:is|:)?\s*{letter}\b|^[^\S\n]*{letter}[.):]?[^\S\n]*$",
            text,
            re.I | re.M,
        ):
            return False
        for named in {pred.strip(), ex}:
            if (len(named) > 1 or named.isdigit()) and re.search(
                rf"(?<![\w.]){re.escape(named)}(?!\w)", text, re.I
            ):
                return False
        return True
    num = parse_number(ex)
    if num is None or len(text) > 100_000:
        return False
    for tok in numbers_in(text, limit=10_000):
        val = parse_number(tok)
        if val is not None and abs(val.value - num.value) <= 1e-9 * max(1.0, abs(num.value)):
            return False
    word = (
        NUMBER_WORDS[int(num.value)]
        if float(num.value).is_integer() and 0 <= num.value < len(NUMBER_WORDS)
        else None
    )
    return not (word and re.search(rf"\b{word}\b", text, re.I))


def classify(fmt: Benchmark, item: GradeItem, ours: dict[str, Any]) -> str:
    """Why our verdict differs from the official one (see :data:`CLASSES`). Reads the response's last
    ``MAX_RESPONSE_CHARS`` characters, as the verifier does (classification runs outside the grading deadline)."""
    if item.official_extraction is None:
        return "unclassified"
    if len(item.response) > MAX_RESPONSE_CHARS:
        item = dataclasses.replace(item, response=item.response[-MAX_RESPONSE_CHARS:])
    off_pred = fmt.official_prediction(item, item.official_extraction)
    our_pred = fmt.official_prediction(item, ours["official_mode_extracted"])
    if item.choices:
        letters = [chr(65 + i) for i in range(len(item.choices))]
        off_named = item.official_extraction.strip() in item.choices + letters or bool(
            re.search(r"\([A-Za-z]\)", item.official_extraction)
        )
    else:
        off_named = True
    if (off_pred is not None and off_pred == our_pred) or item.official_extraction == ours[
        "official_mode_extracted"
    ]:
        return "same_extraction"
    if (not off_named or ours["reason"] in ("fuzzy_choice", "refusal")) and (
        is_refusal(item.response) or is_refusal(item.official_extraction) or not off_named
    ):
        return "refusal_fuzzy"
    if _untraceable(fmt, item):
        return "official_untraceable"
    if _is_degenerate(item.response):
        return "degenerate"
    statements = answer_statements(item.response, item.choices, item.answer_type)
    distinct = {fmt.official_prediction(item, s) or s for s in statements}
    if len(distinct) > 1:
        return "ambiguous"
    if len(distinct) == 1:
        return "official_contradicts"
    return "extraction_miss"


def grade(
    benchmark: str,
    items: list[GradeItem],
    *,
    mode: str = "official",
    timeout_s: float = 5.0,
    num_workers: int = 2,
    judge: Any = None,
    max_disagreements: int | None = None,
) -> GradeReport:
    """Grade ``items`` of ``benchmark`` in ``mode``; ``judge`` (an :class:`~mssr.rewards.judge.LLMJudge`)
    re-grades the items the rules could not settle (no answer found, no option named, unverifiable, timeout)."""
    fmt = get(benchmark)
    t0 = time.perf_counter()
    runner = get_runner(num_workers)
    outcomes = runner.run(_grade_one, [(benchmark, mode, it) for it in items], timeout_s)
    backend = f"processes({num_workers})" if num_workers > 0 else "inline"
    n_timeouts = n_errors = 0
    rows: list[dict[str, Any]] = []
    for it, out in zip(items, outcomes):
        if out.timed_out:
            n_timeouts += 1
            res = {"correct": False, "extracted": None, "reason": "timeout", "official_mode_extracted": None}
        elif out.error is not None:
            n_errors += 1
            res = {
                "correct": False,
                "extracted": None,
                "reason": f"error: {out.error}",
                "official_mode_extracted": None,
            }
        else:
            res = out.value
        if judge is not None and res["reason"] in ("no_answer", "no_choice_match", "unverifiable", "timeout"):
            jv = judge.judge(it.question, it.response, it.answer, it.choices)
            res = {**res, "correct": jv.correct, "reason": jv.reason}
        rows.append(res)
    report = GradeReport(
        benchmark=benchmark,
        mode=mode,
        n=len(items),
        n_correct=sum(r["correct"] for r in rows),
        n_with_official=sum(it.official is not None for it in items),
        n_agree=sum(it.official is not None and r["correct"] == it.official for it, r in zip(items, rows)),
        n_official_correct=sum(bool(it.official) for it in items),
        n_timeouts=n_timeouts,
        n_errors=n_errors,
        elapsed_s=0.0,
        backend=backend,
    )
    classes: Counter[str] = Counter()
    for it, r in zip(items, rows):
        report.verdicts.append(
            {
                "pid": it.id,
                "verdict": bool(r["correct"]),
                "official": it.official,
                "extracted": r["extracted"],
                "reason": r["reason"],
            }
        )
        for key in fmt.breakdown_keys:
            value = getattr(it, key, None) if hasattr(it, key) else it.meta.get(key)
            cell = report.breakdown.setdefault(key, {}).setdefault(
                str(value), {"n": 0, "correct": 0, "official_correct": 0, "agree": 0, "with_official": 0}
            )
            cell["n"] += 1
            cell["correct"] += int(bool(r["correct"]))
            if it.official is not None:
                cell["with_official"] += 1
                cell["official_correct"] += int(it.official)
                cell["agree"] += int(bool(r["correct"]) == it.official)
        if it.official is not None and bool(r["correct"]) != it.official:
            cls = classify(fmt, it, r)
            classes[cls] += 1
            if max_disagreements is None or len(report.disagreements) < max_disagreements:
                report.disagreements.append(
                    {
                        "pid": it.id,
                        "verdict": bool(r["correct"]),
                        "official": it.official,
                        "class": cls,
                        "extracted": r["extracted"],
                        "official_extraction": it.official_extraction,
                        "answer": it.answer,
                        "choices": it.choices,
                        "reason": r["reason"],
                        "response_tail": it.response[-300:],
                    }
                )
    report.classes = dict(classes.most_common())
    report.elapsed_s = time.perf_counter() - t0
    return report

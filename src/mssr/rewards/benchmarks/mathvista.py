"""MathVista (testmini/test): ``testmini.json`` problems keyed by pid + an output file of responses.

Problems carry ``question, choices, answer, answer_type (text|integer|float|list), precision,
question_type (multi_choice|free_form), unit, metadata``; a response file maps pid -> ``{"response": …}`` and,
when it was scored by the benchmark's pipeline, ``extraction``, ``prediction`` and ``true_false``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mssr.io import read_json
from mssr.rewards.benchmarks.base import (
    BenchmarkFormat,
    BenchmarkFormatError,
    GradeItem,
    register_benchmark,
)
from mssr.rewards.equivalence import mathvista_normalize
from mssr.rewards.text import to_text


def _by_pid(data: Any, path: Path, what: str) -> dict[str, dict[str, Any]]:
    if isinstance(data, dict):
        out = {}
        for pid, row in data.items():
            if not isinstance(row, dict):
                raise BenchmarkFormatError(
                    f"{what} file {path}: entry {pid!r} is {type(row).__name__}, not an object"
                )
            out[str(pid)] = row
        return out
    if isinstance(data, list):
        out = {}
        for i, row in enumerate(data):
            if not isinstance(row, dict) or "pid" not in row:
                raise BenchmarkFormatError(f"{what} file {path}: row {i} is not an object with a 'pid'")
            out[str(row["pid"])] = row
        return out
    raise BenchmarkFormatError(f"{what} file {path}: expected an object keyed by pid or a list of rows")


def _precision(x: Any, path: Path, pid: str) -> int | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    try:
        return int(x)
    except (TypeError, ValueError):
        raise BenchmarkFormatError(
            f"{path}: problem {pid}: 'precision' must be an integer, got {x!r}"
        ) from None


@register_benchmark("mathvista")
class MathVista(BenchmarkFormat):
    breakdown_keys = ("answer_type", "question_type", "category")

    def load(self, problems: Path, responses: Path) -> list[GradeItem]:
        probs = _by_pid(
            read_json(problems, error=BenchmarkFormatError, what="problems"), Path(problems), "problems"
        )
        resps = _by_pid(
            read_json(responses, error=BenchmarkFormatError, what="responses"), Path(responses), "responses"
        )
        items = []
        for pid, row in resps.items():
            prob = probs.get(pid)
            if prob is None:
                raise BenchmarkFormatError(f"{responses}: pid {pid!r} is not in the problems file {problems}")
            for key in ("answer", "question_type", "answer_type"):
                if key not in prob:
                    raise BenchmarkFormatError(f"{problems}: problem {pid} has no {key!r}")
            if "response" not in row:
                raise BenchmarkFormatError(f"{responses}: pid {pid} has no 'response'")
            choices = prob.get("choices")
            if choices is not None and not isinstance(choices, list):
                raise BenchmarkFormatError(f"{problems}: problem {pid}: 'choices' must be a list or null")
            tf = row.get("true_false")
            meta = dict(prob.get("metadata") or {})
            items.append(
                GradeItem(
                    id=pid,
                    response=to_text(row.get("response")),
                    answer=to_text(prob["answer"]),
                    answer_type=prob["answer_type"],
                    choices=[to_text(c) for c in choices] if choices else None,
                    precision=_precision(prob.get("precision"), Path(problems), pid),
                    question_type=prob["question_type"],
                    question=to_text(prob.get("question")),
                    official=None if tf is None else bool(tf),
                    official_extraction=None if row.get("extraction") is None else to_text(row["extraction"]),
                    meta={
                        "category": meta.get("category"),
                        "source": meta.get("source"),
                        "unit": prob.get("unit"),
                    },
                )
            )
        return items

    def official_prediction(self, item: GradeItem, extraction: str | None) -> str | None:
        return mathvista_normalize(
            extraction, item.choices, item.question_type, item.answer_type, item.precision
        )

"""MathVista (Lu et al., ICLR 2024), testmini: 1,000 problems (540 multiple choice, 460 free form).
Layouts: the GitHub/Hugging Face JSON — ``testmini.json`` (an object keyed by pid, or a list; ``question``,
``image`` "images/1.jpg", ``choices``, ``unit``, ``precision``, ``answer``, ``question_type``
"multi_choice"/"free_form", ``answer_type`` "text"/"integer"/"float"/"list", ``metadata``) with ``images/``
beside it; or the Hugging Face parquet export (``AI4Math/MathVista``, split ``testmini``) whose
``decoded_image`` embeds the image.

The prompt is ``question`` followed by MathVista's option listing for multiple choice. Grading uses
MathVista's answer types and ``precision`` with mssr's verifier; ``--mode official`` applies MathVista's own
scoring conventions (``mssr.rewards``: nearest option by edit distance, integer/float normalisation).

Published responses (``mssr grade mathvista``, :meth:`MathVista.load_responses`): a JSON file mapping pid ->
``{"response": …}`` (or a list of rows with a ``pid``) and, when the benchmark's pipeline scored it,
``extraction``, ``prediction`` and ``true_false``. Its problems are read and checked by the same code as for
``mssr eval`` (:func:`problems`), but keep their fields as published (option texts unstripped), as MathVista's
own scoring saw them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mssr.data.record import CHOICE_LETTERS
from mssr.evaluation.benchmarks.base import (
    BenchItem,
    Benchmark,
    GradeItem,
    choice_item,
    format_choices,
    free_item,
    register,
)
from mssr.evaluation.benchmarks.readers import BenchmarkDataError, Row, first_image, require, text_of
from mssr.io import read_json
from mssr.rewards.equivalence import mathvista_normalize
from mssr.rewards.text import to_text

KEYS = ("question", "answer", "question_type", "answer_type")


@dataclass(frozen=True)
class Problem:
    """One row of the problems file, checked against MathVista's layout; ``row`` holds its fields as published."""

    pid: str
    label: str  # "<file>: <row> (pid <pid>)", for messages
    row: dict[str, Any]
    precision: int | None


def problems(rows: list[Row], file: Path) -> list[Problem]:
    """Every row of a MathVista problems file, checked (both ``mssr eval`` and ``mssr grade`` read them here):
    the keys of :data:`KEYS`, a pid, a known question type, a multiple-choice answer that is one of at least two
    options, a known free-form answer type, an integer ``precision``."""
    out = []
    for row in rows:
        d = row.data
        require(row, file, KEYS)
        pid = text_of(d.get("pid")) or row.key
        if not pid:
            raise BenchmarkDataError(f"{file}: {row.where}: no 'pid'")
        label = f"{file}: {row.where} (pid {pid})"
        answer, qtype, atype = text_of(d["answer"]), text_of(d["question_type"]), text_of(d["answer_type"])
        if qtype == "multi_choice":
            choices = d.get("choices")
            if not isinstance(choices, list) or len(choices) < 2:
                raise BenchmarkDataError(
                    f"{label}: multi_choice problem needs a list of 'choices', got {choices!r}"
                )
            texts = [text_of(c) for c in choices]
            if answer not in texts:
                raise BenchmarkDataError(f"{label}: answer {answer!r} is not one of its choices {texts}")
        elif qtype == "free_form":
            if atype not in ("integer", "float", "text", "list"):
                raise BenchmarkDataError(f"{label}: answer_type {atype!r} not in integer/float/text/list")
        else:
            raise BenchmarkDataError(f"{label}: question_type {qtype!r} is not 'multi_choice' or 'free_form'")
        out.append(Problem(pid, label, d, _precision(d, label)))
    return out


def _precision(d: dict[str, Any], label: str) -> int | None:
    x = d.get("precision")
    if x is None or (isinstance(x, float) and math.isnan(x)) or x == "":
        return None
    try:
        return int(float(x))
    except (TypeError, ValueError):
        raise BenchmarkDataError(f"{label}: 'precision' must be an integer, got {x!r}") from None


def _by_pid(data: Any, path: Path) -> dict[str, dict[str, Any]]:
    """A responses file's rows keyed by pid (an object keyed by pid, or a list of rows with a ``pid``)."""
    if isinstance(data, dict):
        out = {}
        for pid, row in data.items():
            if not isinstance(row, dict):
                raise BenchmarkDataError(
                    f"responses file {path}: entry {pid!r} is {type(row).__name__}, not an object"
                )
            out[str(pid)] = row
        return out
    if isinstance(data, list):
        out = {}
        for i, row in enumerate(data):
            if not isinstance(row, dict) or "pid" not in row:
                raise BenchmarkDataError(f"responses file {path}: row {i} is not an object with a 'pid'")
            out[str(row["pid"])] = row
        return out
    raise BenchmarkDataError(f"responses file {path}: expected an object keyed by pid or a list of rows")


@register("mathvista")
class MathVista(Benchmark):
    title = "MathVista"
    dirs = ("mathvista", "MathVista")
    files = (
        "testmini.json",
        "data/testmini.json",
        "testmini-*.parquet",
        "data/testmini-*.parquet",
        "testmini/*.parquet",
        "*.parquet",
    )
    obtain = "huggingface.co/datasets/AI4Math/MathVista (testmini parquet) or github.com/lupantech/MathVista"
    breakdown_keys = ("answer_type", "question_type", "category")

    def parse(
        self, rows: list[Row], file: Path, image_root: Path, skipped: list[str], **options: Any
    ) -> list[BenchItem]:
        items = []
        for p in problems(rows, file):
            d = p.row
            ref = first_image(d, ("decoded_image", "image"), image_root, p.label)
            meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
            extra = {
                "benchmark": self.name,
                "category": meta.get("category"),
                "task": meta.get("task"),
                "unit": text_of(d.get("unit")) or None,
            }
            question, answer = text_of(d["question"]), text_of(d["answer"])
            if text_of(d["question_type"]) == "multi_choice":
                choices = [text_of(c) for c in d["choices"]]
                letter = CHOICE_LETTERS[choices.index(answer)]
                text = f"{question}\n{format_choices(choices)}"
                items.append(choice_item(p.pid, text, letter, [ref], {**extra, "gold": answer}, choices))
            else:
                atype = text_of(d["answer_type"])
                items.append(
                    free_item(p.pid, question, answer, [ref], extra, verify_type=atype, precision=p.precision)
                )
        return items

    def load_responses(self, problems_path: str | Path, responses: str | Path) -> list[GradeItem]:
        if not Path(problems_path).exists():
            raise BenchmarkDataError(f"problems file not found: {problems_path}")
        files, rows = self.read(problems_path)
        probs = {p.pid: p for p in problems(rows, files[0])}
        resps = _by_pid(read_json(responses, error=BenchmarkDataError, what="responses"), Path(responses))
        items = []
        for pid, row in resps.items():
            prob = probs.get(pid)
            if prob is None:
                raise BenchmarkDataError(f"{responses}: pid {pid!r} is not in the problems file {files[0]}")
            if "response" not in row:
                raise BenchmarkDataError(f"{responses}: pid {pid} has no 'response'")
            d = prob.row
            choices = d.get("choices")
            tf = row.get("true_false")
            meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
            items.append(
                GradeItem(
                    id=pid,
                    response=to_text(row.get("response")),
                    answer=to_text(d["answer"]),
                    answer_type=d["answer_type"],
                    choices=[to_text(c) for c in choices] if isinstance(choices, list) and choices else None,
                    precision=prob.precision,
                    question_type=d["question_type"],
                    question=to_text(d.get("question")),
                    official=None if tf is None else bool(tf),
                    official_extraction=None if row.get("extraction") is None else to_text(row["extraction"]),
                    meta={
                        "category": meta.get("category"),
                        "source": meta.get("source"),
                        "unit": d.get("unit"),
                    },
                )
            )
        return items

    def official_prediction(self, item: GradeItem, extraction: str | None) -> str | None:
        return mathvista_normalize(
            extraction, item.choices, item.question_type, item.answer_type, item.precision
        )

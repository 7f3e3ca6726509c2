"""MathVista (Lu et al., ICLR 2024), testmini: 1,000 problems (540 multiple choice, 460 free form).
Layouts: the GitHub/Hugging Face JSON — ``testmini.json`` (an object keyed by pid, or a list; ``question``,
``image`` "images/1.jpg", ``choices``, ``unit``, ``precision``, ``answer``, ``question_type``
"multi_choice"/"free_form", ``answer_type`` "text"/"integer"/"float"/"list", ``metadata``) with ``images/``
beside it; or the Hugging Face parquet export (``AI4Math/MathVista``, split ``testmini``) whose
``decoded_image`` embeds the image.

The prompt is ``question`` followed by MathVista's option listing for multiple choice. Grading uses
MathVista's answer types and ``precision`` with mssr's verifier; ``--mode official`` applies MathVista's own
scoring conventions (``mssr.rewards``: nearest option by edit distance, integer/float normalisation).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mssr.data.record import CHOICE_LETTERS
from mssr.evaluation.benchmarks.base import (
    BenchItem,
    Benchmark,
    choice_item,
    format_choices,
    free_item,
    register,
)
from mssr.evaluation.benchmarks.readers import (
    BenchmarkDataError,
    Row,
    first_image,
    require,
    text_of,
)

KEYS = ("question", "answer", "question_type", "answer_type")


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

    def parse(
        self, rows: list[Row], file: Path, image_root: Path, skipped: list[str], **options: Any
    ) -> list[BenchItem]:
        items = []
        for row in rows:
            d = row.data
            require(row, file, KEYS)
            pid = text_of(d.get("pid")) or row.key
            if not pid:
                raise BenchmarkDataError(f"{file}: {row.where}: no 'pid'")
            label = f"{file}: {row.where} (pid {pid})"
            ref = first_image(d, ("decoded_image", "image"), image_root, label)
            meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
            extra = {
                "benchmark": self.name,
                "category": meta.get("category"),
                "task": meta.get("task"),
                "unit": text_of(d.get("unit")) or None,
            }
            question, answer = text_of(d["question"]), text_of(d["answer"])
            qtype, atype = text_of(d["question_type"]), text_of(d["answer_type"])
            if qtype == "multi_choice":
                choices = d.get("choices")
                if not isinstance(choices, list) or len(choices) < 2:
                    raise BenchmarkDataError(
                        f"{label}: multi_choice problem needs a list of 'choices', got {choices!r}"
                    )
                choices = [text_of(c) for c in choices]
                if answer not in choices:
                    raise BenchmarkDataError(
                        f"{label}: answer {answer!r} is not one of its choices {choices}"
                    )
                letter = CHOICE_LETTERS[choices.index(answer)]
                text = f"{question}\n{format_choices(choices)}"
                items.append(choice_item(pid, text, letter, [ref], {**extra, "gold": answer}, choices))
            elif qtype == "free_form":
                if atype not in ("integer", "float", "text", "list"):
                    raise BenchmarkDataError(f"{label}: answer_type {atype!r} not in integer/float/text/list")
                items.append(
                    free_item(
                        pid, question, answer, [ref], extra, verify_type=atype, precision=_precision(d, label)
                    )
                )
            else:
                raise BenchmarkDataError(
                    f"{label}: question_type {qtype!r} is not 'multi_choice' or 'free_form'"
                )
        return items


def _precision(d: dict[str, Any], label: str) -> int | None:
    x = d.get("precision")
    if x is None or (isinstance(x, float) and math.isnan(x)) or x == "":
        return None
    try:
        return int(float(x))
    except (TypeError, ValueError):
        raise BenchmarkDataError(f"{label}: 'precision' must be an integer, got {x!r}") from None

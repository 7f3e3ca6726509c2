"""We-Math (Qiao et al., ACL 2025), testmini: 1,740 multiple-choice visual math problems (one-step and
multi-step, with knowledge concepts). Layout (github.com/We-Math/We-Math ``data/``, or the Hugging Face
``We-Math/We-Math`` files): ``testmini.json`` — a list of rows (``ID``, ``key``, ``question``, ``option``
"A. …;B. …", ``answer`` letter, ``image_path`` "2steps/image/1-1.png", ``knowledge concept``) — with the image
folders beside it; a parquet export with the image embedded in ``image_path``/``image`` works too.

The prompt is the question followed by the parsed options. Graded by option.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mssr.evaluation.benchmarks.base import (
    BenchItem,
    Benchmark,
    choice_item,
    format_choices,
    letter_answer,
    register,
)
from mssr.evaluation.benchmarks.readers import BenchmarkDataError, Row, first_image, require, text_of

_OPTION = re.compile(r"(?:^|;)\s*([A-J])\s*[.．:：]\s*")


def parse_options(option: str) -> list[str] | None:
    """``"A. 300, 400;B. 400, 300; C. …"`` → the option texts, when the letters run A, B, C … in order."""
    marks = list(_OPTION.finditer(option))
    if len(marks) < 2 or [m.group(1) for m in marks] != [chr(65 + i) for i in range(len(marks))]:
        return None
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(option)
        out.append(option[m.end() : end].strip().rstrip(";").strip())
    return out


@register("wemath", "we-math")
class WeMath(Benchmark):
    title = "WeMath"
    dirs = ("wemath", "We-Math", "WeMath")
    files = (
        "testmini.json",
        "data/testmini.json",
        "testmini*.parquet",
        "data/testmini*.parquet",
        "*.parquet",
    )
    obtain = "github.com/We-Math/We-Math (data/testmini.json + image folders) or huggingface.co/datasets/We-Math/We-Math"

    def parse_row(
        self, row: Row, index: int, file: Path, image_root: Path, skipped: list[str], **options: Any
    ) -> BenchItem | None:
        d = row.data
        require(row, file, ("ID", "question", "option", "answer"))
        item_id = text_of(d["ID"])
        label = f"{file}: {row.where} (ID {item_id})"
        ref = first_image(d, ("image", "image_path"), image_root, label)
        letter = letter_answer(text_of(d["answer"]))
        if letter is None:
            raise BenchmarkDataError(f"{label}: answer {d['answer']!r} is not an option letter")
        option = text_of(d["option"])
        choices = parse_options(option)
        if choices is not None and ord(letter) - 65 >= len(choices):
            choices = None
        listing = format_choices(choices) if choices is not None else f"Options: {option}"
        question = f"{text_of(d['question'])}\n{listing}"
        extra = {
            "benchmark": self.name,
            "category": text_of(d.get("knowledge concept")) or None,
            "key": text_of(d.get("key")) or None,
        }
        return choice_item(item_id, question, letter, [ref], extra, choices)

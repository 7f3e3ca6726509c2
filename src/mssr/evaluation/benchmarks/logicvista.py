"""LogicVista (Xiao et al., 2024): 448 multiple-choice visual logic questions whose options are drawn in the
image. Layout (github.com/Yijia-Xiao/LogicVista, ``data/``): ``dataset.json`` — an object keyed by item id
(``imagename``, ``question``, ``answer``, ``reasoning``, ``skill``, ``broad_capability``,
``specific_capability``, …) — and ``images/<imagename>``.

Answers are one letter ("C"), several letters ("A, C": every one must be given, order free), or a number
for the few questions numbered 1–5. A row with an empty answer (the published file has one, ``v1_382``) is
left out and reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mssr.evaluation.benchmarks.base import (
    BenchItem,
    Benchmark,
    choice_item,
    free_item,
    is_letter_set,
    letter_answer,
    letters_of,
    register,
)
from mssr.evaluation.benchmarks.readers import (
    Row,
    first_image,
    require,
    text_of,
)


@register("logicvista")
class LogicVista(Benchmark):
    title = "LogicVista"
    dirs = ("logicvista", "LogicVista")
    files = ("dataset.json", "data/dataset.json", "*.parquet", "data/*.parquet", "*.jsonl")
    obtain = "github.com/Yijia-Xiao/LogicVista: data/dataset.json + data/images/ (Apache-2.0)"

    images_subdir = "images"

    def parse_row(
        self, row: Row, index: int, file: Path, image_root: Path, skipped: list[str], **options: Any
    ) -> BenchItem | None:
        d = row.data
        require(row, file, ("question", "answer"))
        item_id = row.key or text_of(d.get("id")) or row.where
        answer = text_of(d["answer"])
        if not answer:
            skipped.append(f"{file}: {row.where}: item {item_id}: empty gold answer")
            return None
        label = f"{file}: {row.where} (item {item_id})"
        ref = first_image(d, ("image", "imagename"), image_root, label)
        skill = d.get("skill") or []
        extra = {
            "benchmark": self.name,
            "category": skill[0] if isinstance(skill, list) and skill else text_of(skill) or None,
            "capability": d.get("broad_capability"),
        }
        question = text_of(d["question"])
        letter = letter_answer(answer)
        if letter is not None:
            return choice_item(item_id, question, letter, [ref], extra, None)
        elif is_letter_set(answer):
            letters = ", ".join(letters_of(answer))
            return BenchItem(item_id, question, letters, "text", [ref], None, {**extra, "grading": "letters"})
        else:
            vt = "integer" if answer.lstrip("-").isdigit() else None
            return free_item(item_id, question, answer, [ref], extra, verify_type=vt)

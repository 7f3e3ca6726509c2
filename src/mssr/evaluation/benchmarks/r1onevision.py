"""R1-Onevision-Bench (Yang et al., ICCV 2025): 942 problems in mathematics, physics, chemistry, biology and
deduction, graded by school level. Layouts: the Hugging Face release (``Fancy-MLLM/R1-Onevision-Bench``) is a
VLMEvalKit TSV, ``r1-onevision.tsv`` (``index``, ``image`` base64, ``question``, option columns ``A``…,
``answer``, ``category``, optional ``hint``/``level``); a JSON/JSONL export with ``image_path`` (relative to
the file) instead of the embedded image works too.

The prompt is the question (after the hint, if any) followed by the options when they come as columns.
Letter answers are graded as options, others by value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mssr.data.record import CHOICE_LETTERS
from mssr.evaluation.benchmarks.base import (
    BenchItem,
    Benchmark,
    format_choices,
    option_item,
    options_from_question,
    register,
)
from mssr.evaluation.benchmarks.readers import (
    Row,
    first_image,
    require,
    text_of,
)


@register("r1onevision", "r1-onevision", "r1-onevision-bench", "r1_onevision_bench")
class R1OnevisionBench(Benchmark):
    title = "R1-Onevision"
    dirs = ("r1onevision", "r1-onevision", "R1-Onevision-Bench", "r1_onevision_bench")
    files = ("r1-onevision.tsv", "*.tsv", "r1_onevision_bench.json", "*.jsonl", "*.json", "*.parquet")
    obtain = "huggingface.co/datasets/Fancy-MLLM/R1-Onevision-Bench (r1-onevision.tsv, images as base64)"

    def parse_row(
        self, row: Row, index: int, file: Path, image_root: Path, skipped: list[str], **options: Any
    ) -> BenchItem | None:
        tsv = file.suffix.lower() in (".tsv", ".csv")
        d = row.data
        require(row, file, ("question", "answer"))
        item_id = text_of(d.get("index")) or text_of(d.get("id")) or f"{file.stem}-{index}"
        label = f"{file}: {row.where} (item {item_id})"
        ref = first_image(
            d, ("image", "image_path"), image_root, label, base64_keys=("image",) if tsv else ()
        )
        question, answer = text_of(d["question"]), text_of(d["answer"])
        if not answer:
            skipped.append(f"{label}: empty gold answer")
            return None
        hint = text_of(d.get("hint"))
        if hint:
            question = f"Hint: {hint}\nQuestion: {question}"
        columns = []
        for letter in CHOICE_LETTERS:
            value = text_of(d.get(letter))
            if not value:
                break
            columns.append(value)
        options = columns if len(columns) >= 2 else options_from_question(question)
        if len(columns) >= 2 and options_from_question(question) is None:
            question = f"{question}\n{format_choices(columns)}"
        extra = {
            "benchmark": self.name,
            "category": text_of(d.get("category")) or None,
            "level": text_of(d.get("level")) or None,
        }
        return option_item(item_id, question, answer, [ref], extra, options)

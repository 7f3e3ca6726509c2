"""MMK12 (Meng et al., MM-Eureka, 2025), test split: 2,000 multiple-choice K-12 questions in mathematics,
physics, chemistry and biology (500 each). Layout: the Hugging Face parquet export (``FanqingM/MMK12``,
split ``test``: ``id``, ``subject``, ``image`` embedded, ``question`` with its options, ``answer`` letter), or
the same keys as JSON/JSONL with ``image`` a path relative to the file. Answers that are not an option letter
are graded by value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mssr.evaluation.benchmarks.base import (
    BenchItem,
    Benchmark,
    option_item,
    options_from_question,
    register,
)
from mssr.evaluation.benchmarks.readers import BenchmarkDataError, Row, image_ref, require, text_of


@register("mmk12")
class MMK12(Benchmark):
    title = "MMK12"
    dirs = ("mmk12", "MMK12")
    files = (
        "test.parquet",
        "test-*.parquet",
        "data/test-*.parquet",
        "test/*.parquet",
        "test.jsonl",
        "test.json",
        "*.parquet",
        "*.jsonl",
        "*.json",
    )
    obtain = "huggingface.co/datasets/FanqingM/MMK12 (split test, parquet with embedded images)"

    def parse_row(
        self, row: Row, index: int, file: Path, image_root: Path, skipped: list[str], **options: Any
    ) -> BenchItem | None:
        d = row.data
        require(row, file, ("question", "answer"))
        item_id = text_of(d.get("id")) or f"{file.stem}-{index}"
        label = f"{file}: {row.where} (item {item_id})"
        images = d.get("images") if isinstance(d.get("images"), list) else [d.get("image")]
        refs = [r for k, img in enumerate(images) if (r := image_ref(img, image_root, f"{label} image {k}"))]
        if not refs:
            raise BenchmarkDataError(f"{label}: no image ('image' or 'images')")
        question, answer = text_of(d["question"]), text_of(d["answer"])
        if not answer:
            skipped.append(f"{label}: empty gold answer")
            return None
        extra = {"benchmark": self.name, "category": text_of(d.get("subject")) or None}
        return option_item(item_id, question, answer, refs, extra, options_from_question(question))

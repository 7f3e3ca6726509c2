"""MathVerse (Zhang et al., ECCV 2024), testmini: 788 problems × 5 versions (Text Dominant, Text Lite,
Vision Intensive, Vision Dominant, Vision Only) = 3,940 items, plus the 788-item Text Only version.
Layouts: the GitHub/Hugging Face JSON — ``testmini.json`` (a list; ``sample_index``, ``problem_index``,
``problem_version``, ``question``, ``image`` (a path relative to ``images/``, "" for Text Only),
``answer``, ``question_type`` "multi-choice"/"free-form", ``metadata``, ``query_wo``, ``query_cot``) with
``images/`` beside it, or ``testmini_text_only.json`` alone; or the Hugging Face parquet export
(``AI4Math/MathVerse``, config ``testmini``) with the image embedded.

The prompt is ``question`` (multiple-choice questions list their options after "Choices:" — except the
Vision Only/Dominant versions, whose options are in the image and are graded by letter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mssr.evaluation.benchmarks.base import (
    BenchItem,
    Benchmark,
    free_item,
    option_item,
    options_from_question,
    register,
)
from mssr.evaluation.benchmarks.readers import BenchmarkDataError, Row, image_ref, require, text_of

KEYS = ("sample_index", "problem_version", "question", "answer", "question_type")


@register("mathverse")
class MathVerse(Benchmark):
    title = "MathVerse"
    dirs = ("mathverse", "MathVerse")
    files = (
        "testmini.json",
        "testmini/*.parquet",
        "testmini-*.parquet",
        "data/testmini-*.parquet",
        "*.parquet",
        "testmini_text_only.json",
    )
    obtain = "huggingface.co/datasets/AI4Math/MathVerse (testmini.json + images/, or the testmini parquet)"

    images_subdir = "images"

    def parse_row(
        self, row: Row, index: int, file: Path, image_root: Path, skipped: list[str], **options: Any
    ) -> BenchItem | None:
        d = row.data
        require(row, file, KEYS)
        item_id = text_of(d["sample_index"])
        if not item_id:
            raise BenchmarkDataError(f"{file}: {row.where}: empty 'sample_index'")
        question, answer = text_of(d["question"]), text_of(d["answer"])
        if not answer:
            skipped.append(f"{file}: {row.where}: item {item_id}: empty gold answer")
            return None
        ref = image_ref(d.get("image"), image_root, f"{file}: {row.where} (item {item_id})")
        meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
        version = text_of(d["problem_version"])
        extra = {
            "benchmark": self.name,
            "category": version,
            "problem_index": text_of(d.get("problem_index")),
            "subject": meta.get("subject"),
            "subfield": meta.get("subfield"),
        }
        qtype = text_of(d["question_type"])
        refs = [ref] if ref is not None else []
        if qtype == "multi-choice":
            return option_item(item_id, question, answer, refs, extra, options_from_question(question))
        elif qtype == "free-form":
            return free_item(item_id, question, answer, refs, extra)
        else:
            raise BenchmarkDataError(
                f"{file}: {row.where}: item {item_id}: question_type {qtype!r} is not 'multi-choice' or 'free-form'"
            )

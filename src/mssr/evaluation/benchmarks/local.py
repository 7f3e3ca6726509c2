"""Benchmarks in mssr's own data format: the built-in task (``builtin``) and any user JSONL (``jsonl:PATH``).

Both read through :func:`mssr.data.load_records` (keys, ``<image>`` placeholders, choices and answer types as
in ``docs/data.md``), so they see exactly the records training sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mssr.data import DataError, load_records
from mssr.evaluation.benchmarks.base import BenchItem, Benchmark, BenchmarkData, register
from mssr.evaluation.benchmarks.readers import BenchmarkDataError, ImageRef


def items_from_records(records: list[Any], benchmark: str, category_key: str | None) -> list[BenchItem]:
    items = []
    for r in records:
        extra = dict(r.extra)
        extra.setdefault("benchmark", benchmark)
        if category_key and category_key in r.extra:
            extra.setdefault("category", r.extra[category_key])
        items.append(
            BenchItem(
                r.id,
                r.question,
                r.answer,
                r.answer_type,
                [ImageRef(image=im, label=f"{benchmark} item {r.id}") for im in r.images],
                list(r.choices) if r.choices is not None else None,
                extra,
            )
        )
    return items


@register("builtin")
class Builtin(Benchmark):
    """The built-in visual-reasoning task; ``path`` is its dataset directory, ``split`` one of its splits.

    Graded with the training reward (see :mod:`mssr.evaluation.runner`), so the score equals what training's
    validation reports for the same policy and split.
    """

    title = "Built-in"
    obtain = "generated locally (mssr data / the training config); nothing to download"

    def load(
        self,
        path: str | Path,
        *,
        require_images: bool = True,
        limit: int | None = None,
        split: str = "val",
        **options: Any,
    ) -> BenchmarkData:
        try:
            records = load_records(path, split)
        except DataError as exc:
            raise BenchmarkDataError(f"builtin: {exc}") from None
        skipped = list(records.skipped)
        if limit is not None:
            records = records[:limit]
        return BenchmarkData(
            self.name,
            self.title,
            items_from_records(list(records), self.name, "family"),
            f"{path} ({split})",
            skipped,
        )


@register("jsonl")
class GenericJsonl(Benchmark):
    """Your own file in mssr's data format (``question``/``problem``, ``images`` or ``image`` paths, ``answer``,
    optional ``choices``, ``answer_type``, ``id``); name it ``jsonl:PATH`` in ``--benchmarks``. The loaded
    benchmark is named after the file (``PATH``'s stem), in results and tables."""

    title = "JSONL"
    obtain = "your own file (docs/data.md format)"

    def load(
        self, path: str | Path, *, require_images: bool = True, limit: int | None = None, **options: Any
    ) -> BenchmarkData:
        try:
            records = load_records(path)
        except DataError as exc:
            raise BenchmarkDataError(f"jsonl: {exc}") from None
        skipped = list(records.skipped)
        if limit is not None:
            records = records[:limit]
        items = items_from_records(list(records), Path(path).stem, options.get("category_key", "category"))
        return BenchmarkData(Path(path).stem, Path(path).stem, items, str(path), skipped)

"""HallusionBench (Guan et al., CVPR 2024), image split: yes/no questions about charts, tables, maps, figures
and illusions, some about edited images. Layout (github.com/tianyi-lab/HallusionBench):
``HallusionBench.json`` — a list of rows (``category`` VD/VS, ``subcategory``, ``set_id``, ``figure_id``,
``question_id``, ``question``, ``gt_answer`` "1"/"0", ``visual_input`` "0"/"1"/"2", ``filename``
"./VD/…png") — plus the images unpacked from ``hallusion_bench.zip`` (``VD/``, ``VS/``) beside it or in
``hallusion_bench/``. The Hugging Face parquet export (same keys, the image embedded in ``image``) works too.

The image split is every row with ``visual_input != "0"`` (``split="image"``, the default); ``split="all"``
keeps the text-only questions as well. Graded Yes/No (``gt_answer`` 1 = Yes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mssr.evaluation.benchmarks.base import BenchItem, Benchmark, register
from mssr.evaluation.benchmarks.readers import (
    BenchmarkDataError,
    Row,
    image_ref,
    is_missing,
    require,
    text_of,
)

KEYS = (
    "category",
    "subcategory",
    "set_id",
    "figure_id",
    "question_id",
    "question",
    "gt_answer",
    "visual_input",
)


@register("hallusionbench", "hallusion", "hallusion_bench")
class HallusionBench(Benchmark):
    title = "HallusionBench"
    dirs = ("hallusionbench", "HallusionBench", "hallusion_bench")
    files = ("HallusionBench.json", "*.parquet", "data/*.parquet", "*.json")
    obtain = "github.com/tianyi-lab/HallusionBench: HallusionBench.json + hallusion_bench.zip (BSD-3-Clause)"

    def image_root(self, file: Path, root: Path) -> Path:
        for cand in (root, root / "hallusion_bench", root / "images"):
            if (cand / "VD").is_dir() or (cand / "VS").is_dir():
                return cand
        return root

    def parse(
        self,
        rows: list[Row],
        file: Path,
        image_root: Path,
        skipped: list[str],
        *,
        split: str = "image",
        **options: Any,
    ) -> list[BenchItem]:
        if split not in ("image", "all"):
            raise ValueError(f"hallusionbench: split must be 'image' or 'all', got {split!r}")
        items = []
        for row in rows:
            d = row.data
            require(row, file, KEYS)
            visual = text_of(d["visual_input"])
            if split == "image" and visual == "0":
                continue
            item_id = "_".join(
                text_of(d[k]) for k in ("category", "subcategory", "set_id", "figure_id", "question_id")
            )
            gt = text_of(d["gt_answer"])
            if gt not in ("0", "1"):
                raise BenchmarkDataError(
                    f"{file}: {row.where}: item {item_id}: gt_answer must be '0' or '1', got {gt!r}"
                )
            refs = []
            if visual != "0":
                label = f"{file}: {row.where} (item {item_id})"
                embedded = d.get("image")
                if not is_missing(embedded):
                    ref = image_ref(embedded, image_root, label)
                else:
                    name = text_of(d.get("filename"))
                    if not name:
                        raise BenchmarkDataError(
                            f"{file}: {row.where}: item {item_id} has visual input but no filename"
                        )
                    ref = image_ref(name.removeprefix("./"), image_root, label)
                assert ref is not None
                refs.append(ref)
            extra = {
                "benchmark": self.name,
                "grading": "yesno",
                "category": f"{text_of(d['category'])}/{text_of(d['subcategory'])}",
                "visual_input": visual,
                "set_id": text_of(d["set_id"]),
            }
            items.append(
                BenchItem(
                    item_id, text_of(d["question"]), "Yes" if gt == "1" else "No", "text", refs, None, extra
                )
            )
        return items

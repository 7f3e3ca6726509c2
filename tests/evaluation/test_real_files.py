"""The adapters on the benchmarks' real published files (the shared data directory, see ``tests/shared_data.py``;
skipped where absent): every
record parses, against independent readings of the raw JSON."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from mssr.evaluation import BenchmarkReward, benchmarks
from mssr.evaluation.benchmarks import BenchmarkDataError
from shared_data import requires, shared_data_root

SHARED = shared_data_root()
BENCH = SHARED / "benchmarks"
pytestmark = requires("benchmarks")


def test_hallusionbench_every_record():
    raw = json.loads((BENCH / "hallusionbench" / "HallusionBench.json").read_text())
    assert len(raw) == 1129
    everything = benchmarks.get("hallusionbench").load(
        BENCH / "hallusionbench", split="all", require_images=False
    )
    assert len(everything) == len(raw)
    assert len({it.id for it in everything.items}) == len(raw)  # ids unique without renaming
    for row, item in zip(raw, everything.items, strict=True):
        assert item.answer == {"1": "Yes", "0": "No"}[row["gt_answer"]]
        assert item.question == row["question"].strip()
        assert item.extra["grading"] == "yesno"
        if row["visual_input"] == "0":
            assert item.images == []
        else:
            (ref,) = item.images
            assert ref.path.as_posix().endswith(row["filename"].removeprefix("./"))
    image_split = benchmarks.get("hallusionbench").load(BENCH / "hallusionbench", require_images=False)
    assert len(image_split) == sum(r["visual_input"] != "0" for r in raw) == 951
    assert len(image_split.missing_images) == 951  # the images are distributed separately
    with pytest.raises(BenchmarkDataError, match=r"951 image file\(s\) referenced by .*HallusionBench\.json"):
        benchmarks.get("hallusionbench").load(BENCH / "hallusionbench")


def test_mathverse_every_record():
    raw = json.loads((BENCH / "mathverse" / "testmini_text_only.json").read_text())
    data = benchmarks.get("mathverse").load(BENCH / "mathverse")
    assert len(data) == len(raw) == 788 and not data.skipped
    items = {it.id: it for it in data.items}
    assert set(items) == {r["sample_index"] for r in raw}
    reward = BenchmarkReward()
    for row in raw:
        item = items[row["sample_index"]]
        assert item.images == [] and item.extra["category"] == "Text Only"
        if row["question_type"] == "free-form":
            assert item.extra["grading"] == "free" and item.answer == row["answer"].strip()
            continue
        gold = row["answer"].strip()
        letter = re.fullmatch(r"\(?([A-J])\)?", gold)
        if letter:
            assert item.extra["grading"] == "choice" and item.answer == letter.group(1)
        elif item.extra["grading"] == "letters":
            assert item.answer == ", ".join(sorted(set(re.findall(r"[A-J]", gold))))
        else:  # the gold is an option's text: the item's letter must name that text in the question
            assert item.extra["grading"] == "choice"
            assert re.search(rf"^{item.answer}[.:：]\s*{re.escape(gold)}\s*$", row["question"], re.M)
        # grading convention: the gold letter boxed is right, another letter wrong
        if item.extra["grading"] == "choice":
            wrong = "A" if item.answer != "A" else "B"
            assert reward(rf"\boxed{{{item.answer}}}", item.to_record().to_columns()) == 1.0
            assert reward(rf"\boxed{{{wrong}}}", item.to_record().to_columns()) == 0.0
    counts = Counter(it.extra["grading"] for it in data.items)
    assert counts["free"] == sum(r["question_type"] == "free-form" for r in raw) == 352


def test_logicvista_complete_with_images():
    raw = json.loads((BENCH / "logicvista" / "dataset.json").read_text())
    assert len(raw) == 448 and len(list((BENCH / "logicvista" / "images").glob("*.png"))) == 448
    data = benchmarks.get("logicvista").load(BENCH / "logicvista")  # raises if any image were missing
    assert len(data) == 447 and data.skipped == [
        f"{BENCH / 'logicvista' / 'dataset.json'}: key 'v1_382': item v1_382: empty gold answer"
    ]
    assert Counter(it.extra["grading"] for it in data.items) == {"choice": 443, "letters": 3, "free": 1}
    for item in data.items[:3]:
        (img,) = item.to_record().images
        assert img.mode == "RGB" and min(img.size) > 50


@requires("mathvista")
def test_mathvista_metadata_every_record():
    raw = json.loads((SHARED / "mathvista" / "testmini.json").read_text())
    data = benchmarks.get("mathvista").load(SHARED / "mathvista", require_images=False)
    assert len(data) == len(raw) == 1000
    for item in data.items:
        row = raw[item.id]
        if row["question_type"] == "multi_choice":
            assert item.choices[ord(item.answer) - 65] == row["answer"]
        else:
            assert item.answer == row["answer"] and item.extra["verify_type"] == row["answer_type"]

"""Every adapter on fixtures in its benchmark's published layout (written by the tests): parsing, image
decoding, and the grading convention (a right answer scores 1, a wrong one 0)."""

from __future__ import annotations

import pytest

from mssr.evaluation import BenchmarkReward, benchmarks
from mssr.evaluation.benchmarks.base import options_from_question

from . import layouts
from .helpers import COLORS, center_color

REWARD = BenchmarkReward()


def grade(item, response: str, reward: BenchmarkReward = REWARD) -> float:
    return reward(response, item.to_record().to_columns())


def by_id(data):
    return {it.id: it for it in data.items}


def check_images(data, expected_colors: dict[str, str]):
    for item_id, color in expected_colors.items():
        (img,) = by_id(data)[item_id].to_record().images
        assert img.mode == "RGB"
        assert center_color(img) == pytest.approx(COLORS[color], abs=3)


def test_logicvista(tmp_path):
    data = benchmarks.get("logicvista").load(layouts.logicvista(tmp_path))
    items = by_id(data)
    assert list(items) == ["v1_0", "v1_1", "v1_2", "v1_4"]
    assert len(data.skipped) == 1 and "v1_3" in data.skipped[0] and "empty gold answer" in data.skipped[0]
    assert [items[k].extra["grading"] for k in items] == ["choice", "letters", "free", "choice"]
    assert items["v1_1"].answer == "A, C" and items["v1_0"].choices is None  # options live in the image
    assert items["v1_0"].extra["category"] == "deductive" and items["v1_1"].extra["category"] == "inductive"
    check_images(data, {"v1_0": "red", "v1_1": "green", "v1_2": "blue"})
    assert grade(items["v1_0"], r"<think>x</think> \boxed{C}") == 1.0
    assert grade(items["v1_0"], r"\boxed{B}") == 0.0
    assert grade(items["v1_1"], r"\boxed{C, A}") == 1.0  # order free
    assert grade(items["v1_1"], r"\boxed{A}") == 0.0  # every letter needed
    assert grade(items["v1_1"], r"\boxed{A, B, C}") == 0.0
    assert grade(items["v1_2"], r"\boxed{3}") == 1.0 and grade(items["v1_2"], r"\boxed{2}") == 0.0


@pytest.mark.parametrize("parquet", [False, True])
def test_hallusionbench(tmp_path, parquet):
    root = layouts.hallusionbench(tmp_path, parquet=parquet)
    data = benchmarks.get("hallusionbench").load(root)
    assert [it.id for it in data.items] == [f"VS_{'chart' if i % 2 else 'map'}_{i}_0_0" for i in range(1, 6)]
    assert [it.answer for it in data.items] == ["No", "No", "Yes", "No", "No"]  # gt 1 = Yes at i = 3
    assert all(it.extra["grading"] == "yesno" for it in data.items)
    check_images(data, {"VS_chart_1_0_0": "green", "VS_map_2_0_0": "blue", "VS_chart_3_0_0": "red"})
    everything = benchmarks.get("hallusionbench").load(root, split="all")
    assert len(everything) == 6 and everything.items[0].images == []  # the text-only question
    yes = by_id(data)["VS_chart_3_0_0"]
    assert grade(yes, r"\boxed{Yes}") == 1.0 and grade(yes, "Yes, it is.") == 1.0
    assert grade(yes, r"\boxed{no}") == 0.0 and grade(yes, "I cannot tell.") == 0.0


@pytest.mark.parametrize("parquet", [False, True])
def test_mathverse(tmp_path, parquet):
    data = benchmarks.get("mathverse").load(layouts.mathverse(tmp_path, parquet=parquet))
    items = by_id(data)
    assert list(items) == ["1", "2", "3", "4", "5", "6"]
    assert items["1"].choices == ["40°", "60°", "120°", "140°"] and items["1"].answer == "D"
    assert items["2"].choices is None and items["2"].answer == "B"  # Vision Only: options in the image
    assert items["3"].extra["grading"] == "free"
    assert items["4"].answer == "A" and items["4"].choices == [
        "090^\\circ T",
        "180^\\circ T",
    ]  # gold = option text
    assert items["5"].extra["grading"] == "letters" and items["5"].answer == "C, D"
    assert items["6"].images == [] and items["6"].extra["category"] == "Text Only"
    check_images(data, {"1": "red", "2": "green", "3": "blue"})
    assert grade(items["1"], r"\boxed{D}") == 1.0 and grade(items["1"], r"\boxed{140°}") == 1.0
    assert grade(items["1"], r"\boxed{C}") == 0.0
    assert grade(items["2"], r"\boxed{B}") == 1.0 and grade(items["2"], r"\boxed{A}") == 0.0
    assert grade(items["3"], r"\boxed{2\sqrt{3}}") == 1.0 and grade(items["3"], r"\boxed{\sqrt{12}}") == 1.0
    assert grade(items["3"], r"\boxed{3}") == 0.0
    assert grade(items["4"], r"\boxed{A}") == 1.0
    assert grade(items["6"], "The area is 12.") == 1.0  # prose answers count unless --boxed-only
    assert grade(items["6"], "The area is 12.", BenchmarkReward(require_delimited=True)) == 0.0


@pytest.mark.parametrize("parquet", [False, True])
def test_mathvista(tmp_path, parquet):
    data = benchmarks.get("mathvista").load(layouts.mathvista(tmp_path, parquet=parquet))
    items = by_id(data)
    mc = items["1"]
    assert mc.answer == "B" and mc.choices == ["3", "4", "5"] and mc.extra["gold"] == "4"
    assert mc.question.endswith("Choices:\n(A) 3\n(B) 4\n(C) 5")
    assert items["3"].extra["precision"] == 1 and items["3"].extra["verify_type"] == "float"
    assert items["4"].extra["verify_type"] == "list"
    check_images(data, {"1": "red", "2": "green", "3": "blue"})
    assert (
        grade(mc, r"\boxed{B}") == 1.0 and grade(mc, r"\boxed{4}") == 1.0 and grade(mc, r"\boxed{3}") == 0.0
    )
    assert grade(items["2"], r"\boxed{14}") == 1.0 and grade(items["2"], r"\boxed{14.5}") == 0.0
    assert grade(items["3"], r"\boxed{1.23}") == 1.0  # compared at the item's precision (1 decimal)
    assert grade(items["4"], r"\boxed{[1, 2]}") == 1.0 and grade(items["4"], r"\boxed{[2, 1]}") == 0.0
    official = BenchmarkReward(mode="official")  # MathVista's own rule: nearest option by edit distance
    assert grade(mc, "I think it is 4 apples", official) == grade(mc, r"\boxed{4}", official) == 1.0


@pytest.mark.parametrize("parquet", [True, False])
def test_mmk12(tmp_path, parquet):
    data = benchmarks.get("mmk12").load(layouts.mmk12(tmp_path, parquet=parquet))
    items = by_id(data)
    assert items["mmk-0"].choices == ["1", "2", "3", "4"] and items["mmk-0"].answer == "B"
    assert items["mmk-1"].extra["grading"] == "free"
    assert items["mmk-2"].answer == "A"  # "(A)" read as the letter
    assert [items[k].extra["category"] for k in items] == ["math", "physics", "chemistry"]
    check_images(data, {"mmk-0": "red", "mmk-1": "green", "mmk-2": "blue"})
    assert grade(items["mmk-0"], r"\boxed{B}") == 1.0 and grade(items["mmk-0"], r"\boxed{2}") == 1.0
    assert grade(items["mmk-0"], r"\boxed{A}") == 0.0
    assert grade(items["mmk-1"], r"\boxed{0.75}") == 1.0 and grade(items["mmk-1"], r"\boxed{0.7}") == 0.0


@pytest.mark.parametrize("tsv", [True, False])
def test_r1onevision(tmp_path, tsv):
    data = benchmarks.get("r1onevision").load(layouts.r1onevision(tmp_path, tsv=tsv))
    items = by_id(data)
    assert items["0"].choices == ["shark", "whale"] and items["0"].answer == "B"
    assert "whale" in items["0"].question and items["0"].question.count("whale") == 1
    assert items["1"].extra["grading"] == "free" and items["1"].extra["level"] == "Senior High"
    check_images(data, {"0": "red", "1": "green"})
    assert grade(items["0"], r"\boxed{B}") == 1.0 and grade(items["0"], r"\boxed{whale}") == 1.0
    assert grade(items["0"], r"\boxed{A}") == 0.0
    assert grade(items["1"], r"\boxed{12.5 m/s}") == 1.0 and grade(items["1"], r"\boxed{12}") == 0.0


def test_wemath(tmp_path):
    data = benchmarks.get("wemath").load(layouts.wemath(tmp_path))
    first, second = data.items
    assert first.choices == ["300, 400", "400, 300", "3000, 4000", "4000, 3000", "No correct answer"]
    assert first.question.endswith("(E) No correct answer")
    check_images(data, {"2steps_1": "red", "2steps_2": "green"})
    assert grade(first, r"\boxed{C}") == 1.0 and grade(first, r"\boxed{3000, 4000}") == 1.0
    assert grade(first, r"\boxed{A}") == 0.0
    # options whose texts are letters: "\boxed{D}" means option D ("E"), not the option whose text is "D"
    assert second.answer == "D"
    assert grade(second, r"\boxed{D}") == 1.0 and grade(second, r"\boxed{C}") == 0.0


def test_builtin_is_the_training_data(builtin_dir):
    from mssr.data import load_records

    data = benchmarks.get("builtin").load(builtin_dir, split="val")
    records = load_records(builtin_dir, "val")
    assert [it.id for it in data.items] == [r.id for r in records]
    for it, r in zip(data.items, records, strict=True):
        rec = it.to_record()
        assert (rec.question, rec.answer, rec.answer_type, rec.choices) == (
            r.question,
            r.answer,
            r.answer_type,
            r.choices,
        )
        assert [im.tobytes() for im in rec.images] == [im.convert("RGB").tobytes() for im in r.images]
        assert rec.extra["category"] == r.extra["family"]
    assert len(benchmarks.get("builtin").load(builtin_dir, split="test")) == 4


def test_generic_jsonl(tmp_path):
    path = layouts.generic_jsonl(tmp_path)
    data = benchmarks.get("jsonl").load(path)
    assert data.name == data.title == "mine" and [it.answer for it in data.items] == [
        "A",
        "B",
        "C",
    ]  # stored as letters
    check_images(data, {"g0": "red", "g1": "green", "g2": "blue"})
    g1 = by_id(data)["g1"]
    assert (
        grade(g1, r"\boxed{B}") == 1.0
        and grade(g1, r"\boxed{green}") == 1.0
        and grade(g1, r"\boxed{red}") == 0.0
    )


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Q\nChoices:\nA:40°\nB:60°", ["40°", "60°"]),
        ("Q\nChoice:\nA. x\nB. y\nC. z", ["x", "y", "z"]),
        ("Q pick one.\n(A) 1\n(B) 2", ["1", "2"]),
        ("Q\nChoices:\nA:a\nC:c", None),  # letters must run A, B, …
        ("No options here.", None),
    ],
)
def test_options_from_question(question, expected):
    assert options_from_question(question) == expected


def test_paper_alias_and_names():
    assert benchmarks.expand(["paper,logicvista", "mathvista"]) == [
        "mathverse",
        "mathvista",
        "mmk12",
        "r1onevision",
        "hallusionbench",
        "logicvista",
    ]
    assert benchmarks.get("R1-Onevision-Bench").name == "r1onevision"
    assert benchmarks.get("HallusionBench").name == "hallusionbench"

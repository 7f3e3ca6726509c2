"""Writers of small benchmark fixtures in each benchmark's published layout (used by the adapter tests).

Every fixture item i has a question containing "Question number i", a solid-colour image whose colour the
test can check after decoding, and a known gold answer.
"""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

from .helpers import png_bytes, save_png

COLOR_CYCLE = ("red", "green", "blue")


def color(i: int) -> str:
    return COLOR_CYCLE[i % 3]


def logicvista(root: Path) -> Path:
    """data/dataset.json keyed by id + data/images/; answers: letter, letter set, number, and one empty."""
    d = root / "logicvista"
    answers = {"v1_0": "C", "v1_1": "A, C", "v1_2": "3", "v1_3": "", "v1_4": "B"}
    data = {}
    for i, (k, ans) in enumerate(answers.items()):
        save_png(d / "images" / f"{k}.png", color(i))
        data[k] = {
            "imagename": f"{k}.png",
            "question": f"Question number {i}: which option fits?",
            "answer": ans,
            "reasoning": "...",
            "skill": ["inductive" if i % 2 else "deductive"],
            "broad_capability": ["diagram"],
        }
    (d / "dataset.json").write_text(json.dumps(data))
    return d


def hallusionbench(root: Path, *, parquet: bool = False) -> Path:
    d = root / "hallusionbench"
    rows = []
    for i in range(6):
        visual = "0" if i == 0 else "1"
        sub = "chart" if i % 2 else "map"
        fn = None if visual == "0" else f"./VS/{sub}/{i}_0.png"
        row = {
            "category": "VS",
            "subcategory": sub,
            "visual_input": visual,
            "set_id": str(i),
            "figure_id": "0",
            "sample_note": "n",
            "question_id": "0",
            "question": f"Question number {i}: is the chart red?",
            "gt_answer_details": "...",
            "gt_answer": "1" if i % 3 == 0 else "0",
            "filename": fn,
        }
        if fn and not parquet:
            save_png(d / "hallusion_bench" / fn[2:], color(i))
        if parquet:
            row["image"] = {"bytes": png_bytes(color(i)), "path": fn} if fn else None
        rows.append(row)
    d.mkdir(parents=True, exist_ok=True)
    if parquet:
        write_parquet(d / "data" / "image-00000-of-00001.parquet", rows)
    else:
        (d / "HallusionBench.json").write_text(json.dumps(rows))
    return d


MATHVERSE_ROWS = [
    # (problem_version, question_type, question, answer)
    (
        "Text Dominant",
        "multi-choice",
        "Question number 0: angle?\nChoices:\nA:40°\nB:60°\nC:120°\nD:140°",
        "D",
    ),
    ("Vision Only", "multi-choice", "Question number 1: According to the image, answer.", "B"),
    ("Text Lite", "free-form", "Question number 2: find x.", "2\\sqrt{3}"),
    (
        "Text Dominant",
        "multi-choice",
        "Question number 3: bearing?\nChoice:\nA. 090^\\circ T\nB. 180^\\circ T",
        "090^\\circ T",
    ),
    (
        "Text Dominant",
        "multi-choice",
        "Question number 4: two answers.\nChoices:\nA:a\nB:b\nC:c\nD:d",
        "C\nD",
    ),
    ("Text Only", "free-form", "Question number 5: area?", "12"),
]


def mathverse(root: Path, *, parquet: bool = False) -> Path:
    d = root / "mathverse"
    rows = []
    for i, (version, qtype, q, a) in enumerate(MATHVERSE_ROWS):
        image = "" if version == "Text Only" else f"images_version_1/image_{i}.png"
        if image and not parquet:
            save_png(d / "images" / image, color(i))
        rows.append(
            {
                "sample_index": str(i + 1),
                "problem_index": str(i // 2 + 1),
                "problem_version": version,
                "question": q,
                "image": ({"bytes": png_bytes(color(i)), "path": image} if image else None)
                if parquet
                else image,
                "answer": a,
                "question_type": qtype,
                "metadata": {
                    "split": "testmini",
                    "source": "x",
                    "subject": "Plane Geometry",
                    "subfield": "Angle",
                },
                "query_wo": "...",
                "query_cot": "...",
            }
        )
    d.mkdir(parents=True, exist_ok=True)
    if parquet:
        write_parquet(d / "testmini" / "testmini-00000-of-00001.parquet", rows)
    else:
        (d / "testmini.json").write_text(json.dumps(rows))
    return d


def mathvista(root: Path, *, parquet: bool = False) -> Path:
    d = root / "mathvista"
    problems = [
        ("multi_choice", "text", ["3", "4", "5"], "4", None, "Question number 0: how many?"),
        ("free_form", "integer", None, "14", None, "Question number 1: count."),
        ("free_form", "float", None, "1.2", 1, "Question number 2: distance?"),
        ("free_form", "list", None, "[1, 2]", None, "Question number 3: list."),
    ]
    data = {}
    for i, (qtype, atype, choices, ans, prec, q) in enumerate(problems):
        pid = str(i + 1)
        row = {
            "question": q,
            "image": f"images/{pid}.jpg",
            "choices": choices,
            "unit": None,
            "precision": prec,
            "answer": ans,
            "question_type": qtype,
            "answer_type": atype,
            "pid": pid,
            "metadata": {"category": "math-targeted-vqa" if i % 2 else "general-vqa", "task": "t"},
        }
        if parquet:
            row["decoded_image"] = {"bytes": png_bytes(color(i), fmt="JPEG"), "path": None}
            row["precision"] = float("nan") if prec is None else float(prec)
        else:
            save_png(d / "images" / f"{pid}.jpg", color(i))
        data[pid] = row
    d.mkdir(parents=True, exist_ok=True)
    if parquet:
        write_parquet(d / "data" / "testmini-00000-of-00001-x.parquet", list(data.values()))
    else:
        (d / "testmini.json").write_text(json.dumps(data))
    return d


def mmk12(root: Path, *, parquet: bool = True) -> Path:
    d = root / "mmk12"
    rows = []
    for i, (q, a) in enumerate(
        [
            ("Question number 0: pick one.\nA. 1\nB. 2\nC. 3\nD. 4", "B"),
            ("Question number 1: value of x?", "3/4"),
            ("Question number 2: which gas?\nA. O2\nB. N2", "(A)"),
        ]
    ):
        subject = ("math", "physics", "chemistry")[i]
        if parquet:
            image = {"bytes": png_bytes(color(i)), "path": f"{i}.png"}
        else:
            image = f"images/{i}.png"
            save_png(d / image, color(i))
        rows.append({"id": f"mmk-{i}", "subject": subject, "image": image, "question": q, "answer": a})
    d.mkdir(parents=True, exist_ok=True)
    if parquet:
        write_parquet(d / "data" / "test-00000-of-00001.parquet", rows)
    else:
        (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def r1onevision(root: Path, *, tsv: bool = True) -> Path:
    d = root / "r1onevision"
    d.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "index": "0",
            "question": "Question number 0: which is a mammal?",
            "A": "shark",
            "B": "whale",
            "C": "",
            "D": "",
            "answer": "B",
            "category": "Biology",
            "level": "Junior High",
        },
        {
            "index": "1",
            "question": "Question number 1: speed in m/s?",
            "A": "",
            "B": "",
            "C": "",
            "D": "",
            "answer": "12.5",
            "category": "Physics",
            "level": "Senior High",
        },
    ]
    if tsv:
        with (d / "r1-onevision.tsv").open("w", newline="") as fh:
            w = csv.DictWriter(
                fh,
                fieldnames=["index", "image", "question", "A", "B", "C", "D", "answer", "category", "level"],
                delimiter="\t",
            )
            w.writeheader()
            for i, r in enumerate(rows):
                w.writerow({**r, "image": base64.b64encode(png_bytes(color(i))).decode()})
    else:
        out = []
        for i, r in enumerate(rows):
            save_png(d / "images" / f"{i}.png", color(i))
            q = r["question"] + ("\nChoices:\n(A) shark\n(B) whale" if r["A"] else "")
            out.append(
                {
                    "index": r["index"],
                    "image_path": f"images/{i}.png",
                    "question": q,
                    "answer": r["answer"],
                    "level": r["level"],
                    "category": r["category"],
                }
            )
        (d / "r1_onevision_bench.json").write_text(json.dumps(out))
    return d


def wemath(root: Path) -> Path:
    d = root / "wemath"
    rows = []
    for i, (option, ans) in enumerate(
        [
            ("A. 300, 400;B. 400, 300;C. 3000, 4000;D. 4000, 3000; E. No correct answer", "C"),
            ("A. B; B. C; C. D; D. E; E. No correct answer", "D"),  # option texts that are letters
        ]
    ):
        image = f"2steps/image/{i}-1.png"
        save_png(d / image, color(i))
        rows.append(
            {
                "ID": f"2steps_{i + 1}",
                "split": "testmini",
                "knowledge concept": "Units",
                "key": "2steps_1",
                "question": f"Question number {i}: which?",
                "option": option,
                "answer": ans,
                "image_path": image,
            }
        )
    (d / "testmini.json").write_text(json.dumps(rows))
    return d


def generic_jsonl(root: Path) -> Path:
    d = root / "mine"
    rows = []
    for i in range(3):
        save_png(d / "img" / f"{i}.png", color(i))
        rows.append(
            {
                "id": f"g{i}",
                "question": f"<image>Question number {i}: colour?",
                "images": [f"img/{i}.png"],
                "answer": ["red", "green", "blue"][i],
                "choices": ["red", "green", "blue"],
                "category": "colour",
            }
        )
    p = d / "mine.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)

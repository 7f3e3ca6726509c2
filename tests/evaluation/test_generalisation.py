"""Generalisation of the official-mode grader: synthetic graded files per hard response style (verdicts from the
official pipeline's published rules), the leave-one-system-out protocol, agreement by response style in
`mssr grade`, and (slow, with the shared data) the protocol on the development files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mssr.cli.main import main
from mssr.evaluation.benchmarks import get
from mssr.evaluation.benchmarks.base import GradeItem
from mssr.evaluation.study.generalisation import leave_one_out, response_style, synthetic_files
from mssr.evaluation.study.synthetic import STYLES, make_all
from mssr.rewards.equivalence import mathvista_normalize
from shared_data import path_or_skip


def _p(q, choices, answer, atype="text", precision=None):
    return {
        "question": q,
        "choices": choices,
        "answer": answer,
        "answer_type": atype,
        "question_type": "multi_choice" if choices else "free_form",
        "precision": precision,
        "metadata": {"category": "math-targeted-vqa"},
    }


PROBLEMS = {
    "1": _p("Is Coral the roughest?", ["yes", "no"], "no"),
    "2": _p("Are there fewer metallic fighters than rubber objects?", ["Yes", "No"], "Yes"),
    "3": _p(
        "The value of f(-3) is ____ the value of f(2)",
        ["larger than", "equal to", "smaller than"],
        "larger than",
    ),
    "4": _p(
        "What happens to fish if pelicans increase?",
        ["decrease", "nothing", "increase", "none of the above"],
        "decrease",
    ),
    "5": _p("Find the angle ABC.", ["30°", "45°", "60°", "70°"], "60°"),
    "6": _p("How many bars have a value above 40?", None, "3", "integer"),
    "7": _p("What is the distance d in metres?", None, "1.2", "float", 1),
    "8": _p("Does Web Green have the maximum area under the curve?", ["yes", "no"], "yes"),
    "9": _p("Which shape is blue?", ["3/11", "8/11", "6/11", "3/5"], "8/11"),
    "10": _p("How many objects are left?", None, "14", "integer"),
}


@pytest.fixture
def problems_file(tmp_path: Path) -> Path:
    p = tmp_path / "testmini.json"
    p.write_text(json.dumps(PROBLEMS))
    return p


def test_synthetic_files_follow_the_official_normaliser() -> None:
    files = make_all(PROBLEMS, seed=0)
    assert set(files) == set(STYLES)
    assert all(files[s] for s in STYLES), {s: len(f) for s, f in files.items()}
    assert make_all(PROBLEMS, seed=0) == files  # deterministic
    for style, rows in files.items():
        for pid, row in rows.items():
            p = PROBLEMS[pid]
            pred = mathvista_normalize(
                row["extraction"], p["choices"], p["question_type"], p["answer_type"], p["precision"]
            )
            assert row["prediction"] == pred and row["true_false"] == (pred == p["answer"]), (style, pid)
            assert row["synthetic"] == style
    assert files["empty"]["6"] == {
        "response": "",
        "extraction": "",
        "prediction": None,
        "true_false": False,
        "synthetic": "empty",
    }
    # the normaliser's first "(X)": echoed options are read as the first one
    echo = files["echo_options"]["3"]
    assert (
        echo["response"].count("(") >= 2
        and echo["prediction"] == PROBLEMS["3"]["choices"][ord(echo["extraction"].strip()[1]) - 65]
    )


def test_synthetic_verdicts_are_mixed() -> None:
    rows = [r for f in make_all(PROBLEMS, seed=1).values() for r in f.values()]
    assert 0.2 < sum(r["true_false"] for r in rows) / len(rows) < 0.8


def test_grader_agrees_on_every_synthetic_style(problems_file: Path) -> None:
    from mssr.evaluation.regrade import grade

    for name, items in synthetic_files(problems_file).items():
        rep = grade("mathvista", items, mode="official", num_workers=0)
        assert rep.agreement == 1.0, (name, rep.disagreements)


def _item(response, choices=None, answer="3", atype="integer", question="How many?"):
    return GradeItem(
        id="1", response=response, answer=answer, answer_type=atype, choices=choices, question=question
    )


@pytest.mark.parametrize(
    ("item", "style"),
    [
        (_item(""), "empty"),
        (_item("(C) Yes\n(D) No", ["0", "1", "Yes", "No"], "Yes", "text"), "echoed_options"),
        (_item("Question: How many?\nAnswer: 3"), "question_echo"),
        (_item("```python\nprint(3)\n```"), "program"),
        (_item("Without the chart, we cannot determine the answer."), "refusal"),
        (_item("Coral is not the roughest.", ["yes", "no"], "no", "text"), "yesno_statement"),
        (_item("It would go down.", ["decrease", "increase"], "decrease", "text"), "option_text"),
        (_item("Step. " * 100 + "The answer is 3."), "long_cot"),
        (_item("The answer is (B).", ["2", "3"], "3", "text"), "short"),
    ],
)
def test_response_style(item: GradeItem, style: str) -> None:
    assert response_style(item) == style


def test_leave_one_out_selects_rules_on_the_other_files(problems_file: Path) -> None:
    files = synthetic_files(problems_file)
    para = files["synthetic:paraphrase"]
    assert para
    # a "system" whose official verdicts contradict the paraphrase rule: the flipped copy of the paraphrase file
    flipped = [GradeItem(**{**it.__dict__, "official": not it.official}) for it in para]
    res = {
        r.name: r
        for r in leave_one_out(
            {"para": para, "flipped": flipped, "cot": files["synthetic:cot_final"]}, ["option_paraphrase"]
        )
    }
    # left out, the paraphrase file is graded with the rule chosen on (flipped + cot): switched off
    assert res["para"].disabled == ["option_paraphrase"]
    assert res["para"].agree_all == res["para"].n and res["para"].agree_loso < res["para"].n
    assert res["flipped"].disabled == [] and res["cot"].agree_loso == res["cot"].n


def test_cli_leave_one_out_and_styles(problems_file: Path, tmp_path: Path, capsys) -> None:
    rc = main(
        [
            "grade",
            "mathvista",
            "--problems",
            str(problems_file),
            "--responses",
            str(_dev_like(tmp_path)),
            "--synthetic",
            "--leave-one-out",
            "--report-json",
            str(tmp_path / "loso.json"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "leave-one-system-out" in out and "synthetic:negated" in out and "LOSO" in out
    rows = json.loads((tmp_path / "loso.json").read_text())
    assert {r["name"] for r in rows} >= {"synthetic:refusal", str(tmp_path / "dev.json")}
    rc = main(
        [
            "grade",
            "mathvista",
            "--problems",
            str(problems_file),
            "--responses",
            str(_dev_like(tmp_path)),
            "--workers",
            "0",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "agreement by response style" in out and "refusal" in out
    assert (
        main(
            [
                "grade",
                "mathvista",
                "--problems",
                str(problems_file),
                "--responses",
                str(_dev_like(tmp_path)),
                "--leave-one-out",
            ]
        )
        == 2
    )


def _dev_like(tmp_path: Path) -> Path:
    rows = {
        "6": {
            "response": "There are 3 bars above 40. They are 58, 59 and 63.",
            "extraction": "3",
            "true_false": True,
        },
        "9": {
            "response": "Sorry, I can't help with images of people yet.",
            "extraction": "Sorry, I can't help with images of people yet.",
            "true_false": False,
        },
        "1": {"response": "Coral is not the roughest.", "extraction": "no", "true_false": True},
    }
    p = tmp_path / "dev.json"
    p.write_text(json.dumps(rows))
    return p


@pytest.mark.slow
def test_leave_one_system_out_on_the_development_files() -> None:
    """The protocol over the three development files and the synthetic files (docs/rewards.md's table)."""
    dev = path_or_skip("mathvista")
    fmt = get("mathvista")
    names = ["output_bard.json", "output_chatgpt_2shot_solution.json", "output_idefics_9b_instruct.json"]
    files = {n: fmt.load_responses(dev / "testmini.json", dev / n) for n in names}
    files.update(synthetic_files(dev / "testmini.json"))
    res = {r.name: r for r in leave_one_out(files)}
    loso = {n: res[n].agree_loso / res[n].n for n in names}
    # measured: 98.9 / 98.6 / 96.3 (idefics: 11 official extractions name an option its response never states)
    assert loso["output_bard.json"] >= 0.985 and loso["output_chatgpt_2shot_solution.json"] >= 0.985
    assert loso["output_idefics_9b_instruct.json"] >= 0.96
    assert sum(res[n].agree_loso for n in names) / sum(res[n].n for n in names) >= 0.975
    assert all(r.agree_loso / r.n >= 0.99 for n, r in res.items() if n.startswith("synthetic:"))

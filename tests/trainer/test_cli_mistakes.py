"""Mistakes a user makes on the command line: one line on stderr, exit 2, before any work — never a traceback,
never a silently wrong result (issue 26, classes 8 and 9)."""

from __future__ import annotations

import pytest

from mssr.cli.main import main

from .launch import config_args


def _one_line_rc2(capsys, argv: list[str], *needles: str) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    ours = [x for x in err.splitlines() if x.startswith("mssr ")]  # (libraries' load bars aside)
    assert rc == 2, err
    assert "Traceback" not in err and len(ours) == 1, err
    for needle in needles:
        assert needle in ours[0], err


@pytest.mark.parametrize(
    "override,needle",
    [
        ("rollout.engine=vllm", "rollout.engine=vllm needs vLLM"),
        ("device=cuda", "device=cuda: this torch build has no CUDA"),
        ("model.lora_target_modules=[nope_proj]", "model.lora_target_modules: no nn.Linear module matches"),
        ("parallel.strategy=fsdp", "model.lora_rank with parallel.strategy=fsdp is not supported"),
    ],
)
def test_train_config_mistakes(make_config, tmp_path, capsys, override, needle):
    import torch

    if override == "rollout.engine=vllm":
        from mssr.rollout.vllm_engine import vllm_available

        if vllm_available()[0]:
            pytest.skip("vLLM is installed here")
    if override == "device=cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    lora = ["model.lora_rank=4"] if "lora" in override or "fsdp" in override else []
    args = [*config_args(make_config(*lora, out=tmp_path / "run")), override]  # lists are not in config_args
    _one_line_rc2(capsys, ["train", *args], needle)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    "flag,needle",
    [
        (["--timeout", "inf"], "argument --timeout: must be a finite number of seconds > 0"),
        (["--timeout", "nan"], "argument --timeout: must be a finite number of seconds > 0"),
        (["--timeout", "0"], "argument --timeout: must be a finite number of seconds > 0"),
        (["--workers", "-1"], "argument --workers: must be >= 0"),
        (["--json", "DIR"], "is a directory; give a file name"),
    ],
)
def test_grade_argument_mistakes(tmp_path, capsys, flag, needle):
    problems, responses = tmp_path / "testmini.json", tmp_path / "out.json"
    problems.write_text("{}")
    responses.write_text("{}")
    flag = [str(tmp_path) if x == "DIR" else x for x in flag]
    argv = ["grade", "mathvista", "--problems", str(problems), "--responses", str(responses), *flag]
    _one_line_rc2(capsys, argv, "mssr grade: error:", needle)


def test_plan_and_data_argument_mistakes(tmp_path, capsys):
    _one_line_rc2(
        capsys,
        ["plan", "configs/cpu/mssr.yaml", "--device-memory", "nan"],
        "--device-memory: must be a finite",
    )
    _one_line_rc2(capsys, ["plan", "configs/cpu/mssr.yaml", "--devices", "0"], "--devices: must be >= 1")
    as_file = tmp_path / "file"
    as_file.write_text("x")
    _one_line_rc2(capsys, ["data", "--out", str(as_file)], "is a file; give a directory")
    assert as_file.read_text() == "x"


def test_compare_mistakes_go_to_stderr(capsys):
    _one_line_rc2(capsys, ["compare", "--algorithms", "nope", "--dry-run"], "algorithms: unknown 'nope'")
    assert capsys.readouterr().out == ""


def test_a_too_long_prompt_is_a_bad_row_raised_or_skipped(make_config, tmp_path, capsys):
    import json
    import shutil

    data = tmp_path / "data"
    shutil.copytree(make_config().data.train, data)
    rows = (data / "train.jsonl").read_text().splitlines()
    first = json.loads(rows[0])
    first["question"] = first.get("question", "") + " and so on" * 2000  # 20,000 characters
    for key in ("problem", "prompt"):
        first.pop(key, None)
    rows[0] = json.dumps(first)
    (data / "train.jsonl").write_text("\n".join(rows) + "\n")
    args = config_args(make_config(f"data.train={data}", "steps=1", out=tmp_path / "r"))
    _one_line_rc2(capsys, ["train", *args], "its prompt is", "over data.max_prompt_tokens=")
    # under skip the run goes on without that row (was: a 25.7 GB allocation and a traceback)
    args = config_args(make_config(f"data.train={data}", "data.on_error=skip", "steps=1", out=tmp_path / "s"))
    assert main(["train", *args]) == 0

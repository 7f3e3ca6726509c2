"""``mssr eval`` end to end on a tiny random policy: tables printed and written, side by side, resume,
``--compare``, and clear errors."""

from __future__ import annotations

import json

import pytest

from mssr.cli.main import main

from . import layouts


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture
def bench_root(tmp_path):
    root = tmp_path / "benchmarks"
    layouts.logicvista(root)
    return root


def test_eval_two_models_side_by_side_then_resume_and_compare(
    tiny_policy_dir, builtin_dir, bench_root, tmp_path, capsys
):
    out = tmp_path / "evals"
    argv = [
        "eval",
        "--model", f"a={tiny_policy_dir}",
        "--model", f"b={tiny_policy_dir}",
        "--benchmarks", "builtin,logicvista",
        "--data-dir", str(bench_root),
        "--data", f"builtin={builtin_dir}",
        "--split", "val",
        "--max-new-tokens", "6",
        "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "| Model | Built-in | LogicVista | Avg |" in printed.out
    assert printed.out.count("\n| a |") == 1 and printed.out.count("\n| b |") == 1
    for label in ("a", "b"):
        assert len(_rows(out / label / "results" / "builtin.jsonl")) == 6
        logic = _rows(out / label / "results" / "logicvista.jsonl")
        assert [r["id"] for r in logic] == ["v1_0", "v1_1", "v1_2", "v1_4"]
        s = logic[0]["samples"][0]
        assert set(s) == {"response", "extracted", "reason", "correct", "score", "truncated", "tokens"}
        assert s["tokens"] <= 6 and (out / label / "summary.md").is_file()
        meta = json.loads((out / label / "run.json").read_text())
        assert meta["benchmarks"]["builtin"]["protocol"]["max_new_tokens"] == 6
        assert meta["benchmarks"]["logicvista"]["protocol"]["instruction"] == "default"
    table_a = next(ln for ln in printed.out.splitlines() if ln.startswith("| a |"))
    table_b = next(ln for ln in printed.out.splitlines() if ln.startswith("| b |"))
    assert table_a.split("|")[2:] == table_b.split("|")[2:]  # same policy, same numbers
    assert (out / "compare.md").read_text().count("| a |") == 1

    # run again: everything is resumed, nothing regenerated, same table
    assert main(argv) == 0
    again = capsys.readouterr()
    assert "resuming, 6/6 items already evaluated" in again.err and "items, chunk accuracy" not in again.err
    assert table_a in again.out

    assert main(["eval", "--compare", str(out)]) == 0
    compared = capsys.readouterr().out
    assert table_a in compared and table_b in compared


def test_errors_exit_2_and_name_the_problem(tiny_policy_dir, bench_root, tmp_path, capsys):
    base = ["eval", "--model", str(tiny_policy_dir), "--out", str(tmp_path / "o"), "--quiet"]
    assert main([*base, "--benchmarks", "mathvista,nosuchbench"]) == 2
    assert "unknown benchmark 'nosuchbench'" in capsys.readouterr().err
    assert main([*base, "--benchmarks", "mmk12", "--data-dir", str(bench_root)]) == 2
    assert "mmk12: none of ['mmk12', 'MMK12'] under" in capsys.readouterr().err
    (bench_root / "logicvista" / "images" / "v1_4.png").unlink()
    assert main([*base, "--benchmarks", "logicvista", "--data-dir", str(bench_root)]) == 2
    assert "missing, e.g. v1_4:" in capsys.readouterr().err
    assert main(["eval", "--model", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["eval", "--compare", str(tmp_path)]) == 2
    assert "not an evaluation directory" in capsys.readouterr().err


def test_config_gives_a_policy_without_a_run_its_builtin_task(tiny_policy_dir, builtin_dir, tmp_path, capsys):
    """--config YAML: the training config's dataset, instruction and response length are what `builtin` uses
    for a bare policy directory (no run config.yaml beside it); bad paths and bad configs exit 2 in one line."""
    cfg = tmp_path / "task.yaml"
    cfg.write_text(f"data:\n  train: {builtin_dir}\n  instruction: null\nrollout:\n  max_new_tokens: 5\n")
    out = tmp_path / "o"
    argv = ["eval", "--model", f"p={tiny_policy_dir}", "--config", str(cfg), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    capsys.readouterr()
    meta = json.loads((out / "p" / "run.json").read_text())
    protocol = meta["benchmarks"]["builtin"]["protocol"]
    assert protocol["max_new_tokens"] == 5 and protocol["instruction"] is None
    rows = _rows(out / "p" / "results" / "builtin.jsonl")
    from mssr.data import load_records

    assert [r["id"] for r in rows] == [r.id for r in load_records(builtin_dir, "val")]
    assert all(s["tokens"] <= 5 for r in rows for s in r["samples"])

    assert main([*argv[:5], "--config", str(tmp_path / "none.yaml"), "--out", str(out)]) == 2
    assert "training config" in capsys.readouterr().err
    cfg.write_text("rollout:\n  max_new_tokenz: 5\n")
    assert main([*argv[:5], "--config", str(cfg), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "max_new_tokenz" in err and "Traceback" not in err

"""`mssr compare` end to end on the tiny random policy: 2 algorithms × 1 seed × 2 steps in parallel
subprocesses, the report, then a second invocation that skips both finished runs (and, marked slow, a third
that extends them by one step from their checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mssr.cli.main import main
from mssr.experiments.runner import load_manifest

REPO = Path(__file__).resolve().parents[2]


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _argv(out: Path) -> list[str]:
    return [
        "compare",
        "--algorithms", "mssr,grpo",
        "--seeds", "0",
        "--base", str(REPO / "configs/cpu/mssr.yaml"),
        "--out", str(out),
        "--parallel", "2",
        "--threads", "1",
    ]  # fmt: skip


def _check_runs(out: Path) -> dict[str, list[dict]]:
    recs = load_manifest(out)
    assert {r.id: (r.status, r.step) for r in recs.values()} == {
        "mssr/seed0": ("done", 2),
        "grpo/seed0": ("done", 2),
    }
    runs = {a: _metrics(out / f"runs/{a}/seed0") for a in ("mssr", "grpo")}
    for rows in runs.values():  # equal rollouts per step; validation at start and every step
        assert [r["step"] for r in rows] == [0, 1, 2]
        assert [r["train/rollouts"] for r in rows[1:]] == [8.0, 16.0]
        assert all("val/accuracy" in r for r in rows)
    assert "init/rollouts" in runs["mssr"][0] and "init/rollouts" not in runs["grpo"][0]
    for rows in runs.values():  # compute accounting: the generated response tokens, counted per step
        tokens = [0.0] + [r["train/gen_tokens"] for r in rows[1:]]
        for r, before, after in zip(rows[1:], tokens[:-1], tokens[1:], strict=True):
            assert after - before == round(r["response_length/mean"] * 8)
    init = runs["mssr"][0]
    assert init["init/rollouts"] <= init["init/gen_tokens"] <= init["init/rollouts"] * 8  # max_new_tokens=8
    assert all(r["train/init_gen_tokens"] == init["init/gen_tokens"] for r in runs["mssr"][1:])
    assert all(r["train/init_gen_tokens"] == 0 for r in runs["grpo"][1:])
    assert "grpo/zero_std_frac" in runs["grpo"][1] and "mssr/rho" in runs["mssr"][1]
    return runs


def test_compare_end_to_end(tmp_path, fast_overrides, capsys):
    out = tmp_path / "cmp"
    argv = _argv(out)
    assert main([*argv, *fast_overrides]) == 0
    runs = _check_runs(out)

    report = (out / "report.md").read_text()
    for png in ("curves_step.png", "curves_rollouts.png", "curves_wallclock.png"):
        assert (out / png).stat().st_size > 10_000
    grpo_final = runs["grpo"][-1]["val/accuracy"]
    assert f"mean over 1 seed(s): {grpo_final:.4f}" in report
    assert "| **mssr** | 1 |" in report and "| **grpo** | 1 |" in report
    assert "ratio to grpo" in report

    # started again: both runs are done and nothing is launched
    capsys.readouterr()
    assert main([*argv, "--no-report", *fast_overrides]) == 0
    assert "(2 done, 0 to run" in capsys.readouterr().out
    assert all(r.attempts == 1 for r in load_manifest(out).values())


@pytest.mark.slow
def test_compare_extends_finished_runs_from_their_checkpoints(tmp_path, fast_overrides):
    out = tmp_path / "cmp"
    argv = [*_argv(out), "--no-report"]
    assert main([*argv, *fast_overrides]) == 0
    runs = _check_runs(out)
    # one more step: both runs resume from their step-2 checkpoints and keep their logged history
    before = {a: rows[:3] for a, rows in runs.items()}
    extended = [o if not o.startswith("steps=") else "steps=3" for o in fast_overrides]
    assert main([*argv, *extended]) == 0
    for a in ("mssr", "grpo"):
        rows = _metrics(out / f"runs/{a}/seed0")
        assert [r["step"] for r in rows] == [0, 1, 2, 3]
        assert rows[:3] == before[a]
        assert rows[3]["train/rollouts"] == 24.0
        # the token counters resume from the checkpoint: step 3 adds its own tokens to step 2's count
        assert rows[3]["train/gen_tokens"] - rows[2]["train/gen_tokens"] == round(
            rows[3]["response_length/mean"] * 8
        )
        assert rows[3]["train/init_gen_tokens"] == rows[2]["train/init_gen_tokens"]
    assert {r.attempts for r in load_manifest(out).values()} == {2}

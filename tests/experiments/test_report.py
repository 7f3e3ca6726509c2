"""The report from synthetic runs with known numbers: table statistics, targets, ratios, collapse flags."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mssr.experiments.report import Stat, summarize, write_report
from mssr.experiments.runner import COMPARE_JSON, RunRecord, save_manifest

PER_STEP = 64
VAL_STEPS = (0, 2, 4, 6, 8, 10)


def _write_run(
    out: Path,
    arm: str,
    seed: int,
    val: list[float],
    entropy: list[float],
    *,
    step_s: float = 1.0,
    init_s: float | None = None,
    init_rollouts: int = 0,
    counted_tokens: tuple[int, int] | None = None,
) -> RunRecord:
    rel = f"runs/{arm}/seed{seed}"
    d = out / rel
    d.mkdir(parents=True)
    rows = []
    start = {"step": 0, "val/accuracy": val[0]}
    if init_s is not None:
        start.update({"init/time_s": init_s, "init/rollouts": init_rollouts})
    if counted_tokens is not None:  # the trainer's counters: (init tokens, tokens per step)
        start["init/gen_tokens"] = counted_tokens[0]
    rows.append(start)
    for step in range(1, 11):
        r = {
            "step": step,
            "critic/score/mean": 0.1 * seed + 0.01 * step,
            "actor/entropy": entropy[step - 1],
            "actor/kl_loss": 0.001 * step,
            "response_length/mean": 20.0,
            "timing_s/step": step_s,
            "train/rollouts": PER_STEP * step,
            "train/init_rollouts": init_rollouts,
        }
        if counted_tokens is not None:
            r["train/gen_tokens"] = counted_tokens[1] * step
            r["train/init_gen_tokens"] = counted_tokens[0]
        if step in VAL_STEPS:
            r["val/accuracy"] = val[VAL_STEPS.index(step)]
        rows.append(r)
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return RunRecord(f"{arm}/seed{seed}", arm, arm, None, seed, rel, 10, status="done", step=10)


@pytest.fixture
def compare_dir(tmp_path) -> Path:
    out = tmp_path / "cmp"
    flat = [0.1] * 10
    recs = [
        _write_run(out, "grpo", 0, [0.2, 0.3, 0.4, 0.5, 0.55, 0.6], flat),
        _write_run(out, "grpo", 1, [0.2, 0.25, 0.3, 0.35, 0.4, 0.4], flat),
        _write_run(
            out,
            "mssr",
            0,
            [0.2, 0.5, 0.6, 0.7, 0.7, 0.65],
            [0.1] * 9 + [0.09],
            step_s=2.0,
            init_s=10.0,
            init_rollouts=100,
        ),
        _write_run(
            out, "mssr", 1, [0.2, 0.3, 0.5, 0.6, 0.6, 0.7], flat, step_s=2.0, init_s=10.0, init_rollouts=100
        ),
        _write_run(out, "mvsr", 0, [0.2, 0.35, 0.2, 0.1, 0.05, 0.05], [0.08] * 4 + [0.02] * 6, step_s=2.0),
    ]
    save_manifest(out, {r.id: r for r in recs})
    (out / COMPARE_JSON).write_text(
        json.dumps({"reference": "grpo", "base": "b.yaml", "shared_overrides": ["steps=10"],
                    "shared": {"steps": 10, "rollout": {"rollouts_per_step": PER_STEP}}, "invocations": []})
    )  # fmt: skip
    return out


def test_stat_mean_and_sample_std():
    s = Stat.of([0.65, 0.7, None])
    assert (
        s.mean == pytest.approx(0.675)
        and s.std == pytest.approx(math.sqrt(0.00125))
        and (s.n, s.total) == (2, 3)
    )
    assert s.fmt() == "0.675 ± 0.035"
    one = Stat.of([0.5])
    assert one.std is None and one.fmt() == "0.500"
    assert Stat.of([None, None]).fmt() == "—"


def test_summary_numbers(compare_dir):
    s = summarize(compare_dir)
    assert s.target == pytest.approx(0.5)  # mean of grpo's finals 0.6 and 0.4
    arms = {a.arm: a for a in s.arms}
    g, m, v = arms["grpo"], arms["mssr"], arms["mvsr"]

    # grpo: seed 0 reaches 0.5 at step 6 (384 rollouts), seed 1 never does
    assert [r.steps_to_target for r in g.runs] == [6, None]
    assert (
        g.rollouts_to_target.mean == 384 and g.rollouts_to_target.n == 1 and g.rollouts_to_target.std is None
    )
    assert g.ratio.mean == pytest.approx(1.0)
    assert g.final_val.mean == pytest.approx(0.5) and g.final_val.std == pytest.approx(math.sqrt(0.02))

    # mssr: steps 2 and 4 → 128 and 256 rollouts; ratios 1/3 and 2/3 of grpo's 384
    assert [r.steps_to_target for r in m.runs] == [2, 4]
    assert m.steps_to_target.mean == 3 and m.steps_to_target.std == pytest.approx(math.sqrt(2))
    assert m.rollouts_to_target.mean == 192 and m.rollouts_to_target.std == pytest.approx(math.sqrt(8192))
    assert m.ratio.mean == pytest.approx(0.5) and m.ratio.std == pytest.approx(math.sqrt(1 / 18))
    # wall-clock: tracker init 10 s + 2 s per step
    assert [r.wall_to_target for r in m.runs] == [14.0, 18.0]
    assert m.final_val.mean == pytest.approx(0.675) and m.best_val.mean == pytest.approx(0.7)
    assert m.min_entropy.mean == pytest.approx(0.095) and m.final_entropy.mean == pytest.approx(0.095)
    assert [r.init_rollouts for r in m.runs] == [100, 100]
    assert m.entropy_collapses == [] and m.val_collapses == []

    # mvsr: never reaches; entropy 0.08 → 0.02 after step 4 is flagged at step 8 (EMA 0.5: 0.05, 0.035,
    # 0.0275, 0.02375; below half the 0.08 peak from step 6, warm-up 5, 3 in a row); validation 0.35 best,
    # more than 0.1 below it at steps 4, 6, 8 → flagged at 8
    assert v.rollouts_to_target.n == 0 and v.ratio.n == 0
    assert v.entropy_collapses == [(0, 8)] and v.val_collapses == [(0, 8)]
    assert v.final_val.mean == pytest.approx(0.05) and v.best_val.mean == pytest.approx(0.35)


def test_report_markdown_and_figures(compare_dir):
    path = write_report(compare_dir)
    text = path.read_text()
    for png in ("curves_step.png", "curves_rollouts.png", "curves_wallclock.png"):
        assert (compare_dir / png).stat().st_size > 10_000
        assert f"]({png})" in text
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| **")}
    cells = {k: [c.strip() for c in v.split("|")[2:-1]] for k, v in rows.items()}
    assert cells["**mssr**"][:8] == [
        "2", "0.675 ± 0.035", "0.700 ± 0.000", "3.0 ± 1.4 (2/2)", "192 ± 91 (2/2)", "0.50 ± 0.24",
        "16 ± 3 s (2/2)", "0.0950 ± 0.0071",
    ]  # fmt: skip
    assert cells["**grpo**"][3:6] == ["6.0 (1/2)", "384 (1/2)", "1.00"]
    assert cells["**mvsr**"][3:6] == ["not reached", "not reached", "not reached"]
    assert cells["**mvsr**"][-2:] == ["1/1 (s0@8)", "1/1 (s0@8)"]
    assert "grpo's final validation accuracy, mean over 2 seed(s): 0.5000" in text
    assert "| mvsr/seed0 | done | 10/10 |" in text


def test_report_without_reference_or_metrics(compare_dir):
    s = summarize(compare_dir, reference="rloo")
    assert s.target is None and "no reference arm 'rloo'" in s.target_note
    assert all(a.ratio.n == 0 for a in s.arms)
    # an arm planned but not started yet has a row with no numbers
    save_manifest(
        compare_dir,
        {
            **{r.id: r for a in summarize(compare_dir).arms for r in [_rec(a.arm, x.seed) for x in a.runs]},
            "rloo/seed0": RunRecord("rloo/seed0", "rloo", "rloo", None, 0, "runs/rloo/seed0", 10),
        },
    )
    text = write_report(compare_dir, plots=False).read_text()
    assert "| **rloo** | 0 |" in text


def _rec(arm: str, seed: int) -> RunRecord:
    return RunRecord(f"{arm}/seed{seed}", arm, arm, None, seed, f"runs/{arm}/seed{seed}", 10, "done", 10)


def test_compute_accounting_counts_the_initialisation(compare_dir):
    """Old runs (no token counters): tokens estimated from mean lengths (20 per response here)."""
    arms = {a.arm: a for a in summarize(compare_dir).arms}
    m, g = arms["mssr"], arms["grpo"]
    r = m.runs[0]
    assert not r.tokens_exact
    assert (r.init_rollouts, r.total_rollouts, r.all_rollouts) == (100, 640, 740)
    assert (r.init_tokens, r.train_tokens, r.all_tokens) == (2000, 12800, 14800)  # 100 × 20, 640 × 20
    assert r.init_wall_s == 10.0 and r.wall_s == 30.0
    # target 0.5 at steps 2 and 4: 100 init + 128 / 256 rollouts; 2000 + 20 × 128 / 256 tokens
    assert [x.all_rollouts_to_target for x in m.runs] == [228, 356]
    assert [x.tokens_to_target for x in m.runs] == [4560, 7120]
    assert g.runs[0].all_rollouts_to_target == 384 and g.runs[0].tokens_to_target == 7680
    text = write_report(compare_dir, plots=False).read_text()
    assert "## Compute accounting" in text
    row = next(line for line in text.splitlines() if line.startswith("| mssr | 2 | 0.675"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[3:] == [
        "100 ± 0", "640 ± 0", "740 ± 0", "≈ 14,800 ± 0 (2,000 ± 0 + 12,800 ± 0)", "30 ± 0 s (10 ± 0 + 20 ± 0)",
        "292 ± 91 (2/2)", "≈ 5,840 ± 1,810 (2/2)", "16 ± 3 s (2/2)",
    ]  # fmt: skip


def test_compute_accounting_uses_the_counted_tokens(tmp_path):
    out = tmp_path / "cmp"
    flat = [0.1] * 10
    recs = [
        _write_run(out, "mssr", 0, [0.2, 0.5, 0.6, 0.7, 0.7, 0.7], flat, init_s=5.0, init_rollouts=100,
                   counted_tokens=(1234, 999)),
        _write_run(out, "grpo", 0, [0.2, 0.3, 0.4, 0.5, 0.6, 0.7], flat, counted_tokens=(0, 1500)),
    ]  # fmt: skip
    save_manifest(out, {r.id: r for r in recs})
    (out / COMPARE_JSON).write_text(json.dumps({"reference": "grpo"}))
    arms = {a.arm: a for a in summarize(out).arms}
    m, g = arms["mssr"].runs[0], arms["grpo"].runs[0]
    assert m.tokens_exact and g.tokens_exact
    assert (m.init_tokens, m.train_tokens) == (1234, 9990) and (g.init_tokens, g.train_tokens) == (0, 15000)
    # target 0.7 (grpo's final): mssr at step 6 (1234 + 6 × 999 tokens, 100 + 384 rollouts), grpo at step 10
    assert (m.tokens_to_target, m.all_rollouts_to_target) == (1234 + 5994, 484)
    assert (g.tokens_to_target, g.all_rollouts_to_target) == (15000, 640)
    text = write_report(out, plots=False).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| mssr | 1 |"))
    assert "≈" not in row and "11,224 (1,234 + 9,990)" in row

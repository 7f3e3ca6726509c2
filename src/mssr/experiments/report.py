"""The comparison report: ``report.md`` with a summary table per arm, a per-run table, and PNG curves.

Statistics (all stated in the report):
- mean ± sample standard deviation (ddof = 1) over the seeds of an arm; with one seed no spread is given;
- the *target* is the reference arm's (default GRPO) final validation accuracy, averaged over its seeds;
- a run *reaches* the target at its first validation with accuracy ≥ target (the start-of-training
  evaluation counts, as step 0); "steps / rollouts / wall-clock to target" average over the seeds that reach
  it, and say how many did ("not reached" when none);
- the ratio to the reference is rollouts-to-target ÷ the reference arm's mean rollouts-to-target, per seed,
  then mean ± std over seeds (< 1: fewer rollouts than the reference — the paper's "half the steps" claim is
  a ratio of 0.5; at equal rollouts per step the step ratio is the same number);
- collapse flags come from :func:`mssr.algos.collapse.detect_collapse` with its documented default
  thresholds, run on the logged sampled-token entropy and validation accuracy of each run;
- compute accounting counts the value tracker's initialisation: all rollouts = initialisation + training
  rollouts, generated tokens likewise (:mod:`mssr.experiments.curves`: counted by the trainer, estimated for
  runs written before the counters, and then marked ≈), wall-clock = initialisation + step times; "... to
  target" in that table includes the initialisation, so single-rollout and group methods meet on equal terms.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mssr.algos.collapse import CollapseDetector, detect_collapse
from mssr.experiments.curves import METRICS, X_AXES, RunCurves, aggregate, load_run_curves
from mssr.experiments.plan import CompareError
from mssr.experiments.runner import COMPARE_JSON, MANIFEST, RunRecord, load_manifest
from mssr.io import read_json, write_text_atomic
from mssr.trainer import rundir

REPORT = "report.md"
FIGURES = {"step": "curves_step.png", "rollouts": "curves_rollouts.png", "wall": "curves_wallclock.png"}
X_LABELS = {"step": "step", "rollouts": "training rollouts", "wall": "wall-clock of training (s)"}
_EPS = 1e-9


@dataclass
class Stat:
    """Mean ± sample std over the values that exist; ``n`` of them out of ``total`` seeds."""

    mean: float | None
    std: float | None
    n: int
    total: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stat:
        got = [float(v) for v in values if v is not None]
        mean = statistics.fmean(got) if got else None
        std = statistics.stdev(got) if len(got) >= 2 else None
        return cls(mean, std, len(got), len(values))

    def fmt(self, spec: str = ".3f", *, missing: str = "—") -> str:
        if self.mean is None:
            return missing
        s = format(self.mean, spec)
        if self.std is not None:
            s += f" ± {format(self.std, spec)}"
        return s


@dataclass
class RunSummary:
    id: str
    arm: str
    seed: int
    status: str
    last_step: int
    steps: int
    start_val: float | None
    final_val: float | None
    best_val: float | None
    min_entropy: float | None
    final_entropy: float | None
    init_rollouts: float
    total_rollouts: float
    wall_s: float
    entropy_collapse_step: int | None
    val_collapse_step: int | None
    init_tokens: float = 0.0
    train_tokens: float = 0.0
    init_wall_s: float = 0.0
    tokens_exact: bool = True
    steps_to_target: int | None = None
    rollouts_to_target: float | None = None
    wall_to_target: float | None = None
    ratio: float | None = None
    all_rollouts_to_target: float | None = None  # initialisation included
    tokens_to_target: float | None = None  # initialisation included

    @property
    def all_rollouts(self) -> float:
        return self.init_rollouts + self.total_rollouts

    @property
    def all_tokens(self) -> float:
        return self.init_tokens + self.train_tokens


@dataclass
class ArmSummary:
    arm: str
    algorithm: str
    variant: str | None
    runs: list[RunSummary]
    final_val: Stat
    best_val: Stat
    min_entropy: Stat
    final_entropy: Stat
    steps_to_target: Stat
    rollouts_to_target: Stat
    wall_to_target: Stat
    ratio: Stat
    all_rollouts_to_target: Stat = field(default_factory=lambda: Stat.of([]))
    tokens_to_target: Stat = field(default_factory=lambda: Stat.of([]))
    entropy_collapses: list[tuple[int, int]] = field(default_factory=list)  # (seed, step)
    val_collapses: list[tuple[int, int]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.runs)


@dataclass
class Summary:
    arms: list[ArmSummary]
    reference: str
    target: float | None
    target_note: str
    curves: dict[str, list[RunCurves]]


def summarize_run(rec: RunRecord, curves: RunCurves) -> RunSummary:
    val = curves.series["val"]
    ent = [(s, v) for s, v in curves.series["entropy"] if s > 0]
    col = detect_collapse(ent, val)
    last = curves.last_step
    return RunSummary(
        id=rec.id,
        arm=rec.arm,
        seed=rec.seed,
        status=rec.status,
        last_step=last,
        steps=rec.steps,
        start_val=next((v for s, v in val if s == 0), None),
        final_val=val[-1][1] if val else None,
        best_val=max(v for _, v in val) if val else None,
        min_entropy=min(v for _, v in ent) if ent else None,
        final_entropy=ent[-1][1] if ent else None,
        init_rollouts=curves.init_rollouts,
        total_rollouts=curves.rollouts.get(last, 0.0),
        wall_s=curves.wall.get(last, 0.0),
        entropy_collapse_step=col["entropy_collapse_step"],
        val_collapse_step=col["val_collapse_step"],
        init_tokens=curves.init_tokens,
        train_tokens=curves.tokens.get(last, 0.0),
        init_wall_s=curves.init_wall,
        tokens_exact=curves.tokens_exact,
    )


def _reach(curves: RunCurves, target: float) -> tuple[int, float, float] | None:
    for s, v in curves.series["val"]:
        if v >= target - _EPS:
            return s, curves.rollouts[s], curves.wall[s]
    return None


def summarize(out: Path, reference: str | None = None) -> Summary:
    """Read a compare directory's manifest and runs into per-arm statistics (see the module docstring)."""
    out = Path(out)
    if not (out / MANIFEST).exists():
        raise CompareError(f"{out} has no {MANIFEST}: not a compare directory")
    meta = read_json(out / COMPARE_JSON, error=CompareError) if (out / COMPARE_JSON).exists() else {}
    reference = reference or meta.get("reference") or "grpo"
    records = load_manifest(out)
    by_arm: dict[str, list[tuple[RunRecord, RunCurves]]] = {}
    algo: dict[str, tuple[str, str | None]] = {}
    for rec in records.values():
        algo.setdefault(rec.arm, (rec.algorithm, rec.variant))
        by_arm.setdefault(rec.arm, [])
        path = out / rec.dir / rundir.METRICS
        if path.exists():
            by_arm[rec.arm].append((rec, load_run_curves(path)))
    runs = {a: [summarize_run(r, c) for r, c in items] for a, items in by_arm.items()}

    target, note = None, ""
    if reference not in runs:
        note = f"no reference arm {reference!r} in this comparison: no target"
    else:
        finals = [r.final_val for r in runs[reference] if r.final_val is not None]
        if not finals:
            note = f"the reference arm {reference!r} has no validation accuracy yet: no target"
        else:
            target = statistics.fmean(finals)
            note = f"{reference}'s final validation accuracy, mean over {len(finals)} seed(s): {target:.4f}"
    ref_mean = None
    if target is not None:
        for arm, items in by_arm.items():
            for (_, curves), rs in zip(items, runs[arm], strict=True):
                hit = _reach(curves, target)
                if hit is not None:
                    rs.steps_to_target, rs.rollouts_to_target, rs.wall_to_target = hit
                    rs.all_rollouts_to_target = rs.init_rollouts + rs.rollouts_to_target
                    rs.tokens_to_target = rs.init_tokens + curves.tokens.get(hit[0], 0.0)
        ref_hits = [r.rollouts_to_target for r in runs[reference] if r.rollouts_to_target is not None]
        ref_mean = statistics.fmean(ref_hits) if ref_hits else None
        if ref_mean:
            for rs_list in runs.values():
                for rs in rs_list:
                    if rs.rollouts_to_target is not None:
                        rs.ratio = rs.rollouts_to_target / ref_mean
        elif ref_hits:
            note += " (the reference reaches it at step 0, so no ratio is defined)"

    arms = []
    for arm, rs in runs.items():
        a, v = algo[arm]
        arms.append(
            ArmSummary(
                arm=arm,
                algorithm=a,
                variant=v,
                runs=rs,
                final_val=Stat.of([r.final_val for r in rs]),
                best_val=Stat.of([r.best_val for r in rs]),
                min_entropy=Stat.of([r.min_entropy for r in rs]),
                final_entropy=Stat.of([r.final_entropy for r in rs]),
                steps_to_target=Stat.of([r.steps_to_target for r in rs]),
                rollouts_to_target=Stat.of([r.rollouts_to_target for r in rs]),
                wall_to_target=Stat.of([r.wall_to_target for r in rs]),
                ratio=Stat.of([r.ratio for r in rs]),
                all_rollouts_to_target=Stat.of([r.all_rollouts_to_target for r in rs]),
                tokens_to_target=Stat.of([r.tokens_to_target for r in rs]),
                entropy_collapses=[
                    (r.seed, r.entropy_collapse_step) for r in rs if r.entropy_collapse_step is not None
                ],
                val_collapses=[(r.seed, r.val_collapse_step) for r in rs if r.val_collapse_step is not None],
            )
        )
    curves = {arm: [c for _, c in items] for arm, items in by_arm.items()}
    return Summary(arms, reference, target, note, curves)


# ------------------------------------------------------------------------------------------- markdown
def _to_target(stat: Stat, spec: str, unit: str = "") -> str:
    if stat.total == 0:
        return "—"
    if stat.n == 0:
        return "not reached"
    return f"{stat.fmt(spec)}{unit} ({stat.n}/{stat.total})"


def _ratio_cell(a: ArmSummary, s: Summary) -> str:
    if a.ratio.n:
        return a.ratio.fmt(".2f")
    if s.target is None or a.rollouts_to_target.total == 0:
        return "—"
    return "not reached" if a.rollouts_to_target.n == 0 else "n/a (reference at step 0)"


def _collapse_cell(hits: list[tuple[int, int]], n: int) -> str:
    if not hits:
        return f"0/{n}"
    return f"{len(hits)}/{n} (" + ", ".join(f"s{seed}@{step}" for seed, step in hits) + ")"


def summary_table(s: Summary) -> str:
    head = (
        "| arm | seeds | final val acc | best val acc | steps to target | rollouts to target | "
        f"ratio to {s.reference} | wall-clock to target | min entropy | final entropy | "
        "entropy collapse | val collapse |"
    )
    lines = [head, "|" + "---|" * 12]
    for a in s.arms:
        done = sum(r.status == "done" for r in a.runs)
        seeds = f"{a.n}" + (f" ({a.n - done} unfinished)" if done < a.n else "")
        lines.append(
            "| "
            + " | ".join(
                [
                    f"**{a.arm}**" + (f" ({a.algorithm})" if a.arm != a.algorithm else ""),
                    seeds,
                    a.final_val.fmt(),
                    a.best_val.fmt(),
                    _to_target(a.steps_to_target, ".1f") if s.target is not None else "no target",
                    _to_target(a.rollouts_to_target, ",.0f") if s.target is not None else "no target",
                    _ratio_cell(a, s),
                    _to_target(a.wall_to_target, ",.0f", " s") if s.target is not None else "no target",
                    a.min_entropy.fmt(".4f"),
                    a.final_entropy.fmt(".4f"),
                    _collapse_cell(a.entropy_collapses, a.n),
                    _collapse_cell(a.val_collapses, a.n),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def compute_table(s: Summary) -> str:
    """Per arm: what the runs cost, with the tracker's initialisation counted (mean ± std over seeds)."""
    lines = [
        "| arm | seeds | final val acc | init rollouts | training rollouts | all rollouts | generated tokens "
        "(init + training) | wall-clock (init + steps) | all rollouts to target | tokens to target | "
        "wall-clock to target |",
        "|" + "---|" * 11,
    ]
    for a in s.arms:
        rs = a.runs
        approx = "≈ " if any(not r.tokens_exact for r in rs) else ""
        init_tok = Stat.of([r.init_tokens for r in rs])
        train_tok = Stat.of([r.train_tokens for r in rs])
        init_wall = Stat.of([r.init_wall_s for r in rs])
        steps_wall = Stat.of([r.wall_s - r.init_wall_s for r in rs])
        to_target = s.target is not None
        lines.append(
            "| "
            + " | ".join(
                [
                    a.arm,
                    str(a.n),
                    a.final_val.fmt(),
                    Stat.of([r.init_rollouts for r in rs]).fmt(",.0f"),
                    Stat.of([r.total_rollouts for r in rs]).fmt(",.0f"),
                    Stat.of([r.all_rollouts for r in rs]).fmt(",.0f"),
                    f"{approx}{Stat.of([r.all_tokens for r in rs]).fmt(',.0f')} "
                    f"({init_tok.fmt(',.0f')} + {train_tok.fmt(',.0f')})",
                    f"{Stat.of([r.wall_s for r in rs]).fmt(',.0f')} s ({init_wall.fmt(',.0f')} + "
                    f"{steps_wall.fmt(',.0f')})",
                    _to_target(a.all_rollouts_to_target, ",.0f") if to_target else "no target",
                    (approx + _to_target(a.tokens_to_target, ",.0f")) if to_target else "no target",
                    _to_target(a.wall_to_target, ",.0f", " s") if to_target else "no target",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def _f(v: float | None, spec: str = ".3f") -> str:
    return "—" if v is None else format(v, spec)


def runs_table(s: Summary) -> str:
    lines = [
        "| run | status | step | start val | final val | best val | step to target | rollouts to target | "
        "init rollouts | wall-clock (s) | min entropy | entropy collapse | val collapse |",
        "|" + "---|" * 13,
    ]
    for a in s.arms:
        for r in a.runs:
            reach = (
                "—"
                if s.target is None
                else ("not reached" if r.steps_to_target is None else str(r.steps_to_target))
            )
            lines.append(
                f"| {r.id} | {r.status} | {r.last_step}/{r.steps} | {_f(r.start_val)} | {_f(r.final_val)} | "
                f"{_f(r.best_val)} | {reach} | {_f(r.rollouts_to_target, ',.0f')} | {r.init_rollouts:,.0f} | "
                f"{r.wall_s:,.0f} | {_f(r.min_entropy, '.4f')} | {_f(r.entropy_collapse_step, 'd')} | "
                f"{_f(r.val_collapse_step, 'd')} |"
            )
    return "\n".join(lines)


def _settings(meta: dict[str, Any], out: Path) -> list[str]:
    shared = meta.get("shared") or {}
    lines = [
        f"- base config: `{meta.get('base') or '(defaults)'}`; shared overrides: "
        + (", ".join(f"`{o}`" for o in meta.get("shared_overrides") or []) or "none"),
    ]
    rollout = shared.get("rollout") or {}
    if "rollouts_per_step" in rollout:
        lines.append(f"- rollouts per step (every arm): {rollout['rollouts_per_step']}")
    if "steps" in shared:
        lines.append(f"- steps: {shared['steps']}")
    for inv in meta.get("invocations") or []:
        m = inv.get("machine") or {}
        lines.append(
            f"- ran `{' '.join(inv.get('argv') or []) or 'mssr compare'}` from {inv.get('started')} to "
            f"{inv.get('finished', '(unfinished)')} on {m.get('host', '?')} ({m.get('cpus', '?')} CPUs, "
            f"load {m.get('load_avg_1m', '?')} at start, torch {m.get('torch', '?')}, "
            f"GPU {m.get('cuda') or 'none'})"
        )
    return lines


def render_markdown(s: Summary, out: Path, meta: dict[str, Any], figures: dict[str, str]) -> str:
    det = CollapseDetector()
    thresholds = ", ".join(
        f"{f.name}={getattr(det, f.name)}" for f in dataclasses.fields(det) if not f.name.startswith("_")
    )
    arm_defs = []
    records = load_manifest(out)
    seen: set[str] = set()
    for rec in records.values():
        if rec.arm in seen:
            continue
        seen.add(rec.arm)
        run_yaml = out / rec.dir / "run.yaml"
        arm_defs.append(
            f"- **{rec.arm}**: algorithm `{rec.algorithm}`"
            + (f", variant `{rec.variant}`" if rec.variant else "")
            + ("" if run_yaml.exists() else " (not started)")
        )
    kl_keys = sorted({f"{arm}: `{c.keys.get('kl', '—')}`" for arm, cs in s.curves.items() for c in cs[:1]})
    parts = [
        "# mssr compare report",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} from the runs in this directory by `mssr compare` "
        "(regenerate: `mssr compare --report-only DIR`; absolute paths in the commands below are written "
        "relative to this directory).",
        "",
        "## Setting",
        *_settings(meta, out),
        "",
        "Arms:",
        *arm_defs,
        "",
        "## Summary (mean ± sample std over seeds)",
        "",
        f"Target: {s.target_note}.",
        "",
        summary_table(s),
        "",
        "Reading the table: *seeds* counts runs with logged metrics. *Steps / rollouts / wall-clock to target* "
        "average over the seeds that reached the target (their count in parentheses); *not reached* means no "
        f"seed did. The *ratio to {s.reference}* divides each seed's rollouts-to-target by {s.reference}'s mean "
        "(0.5 = half the rollouts, the paper's headline). Training rollouts exclude the value tracker's one-off "
        "initialisation rollouts of single-rollout methods (listed per run below). Wall-clock is training "
        "compute (tracker initialisation + step times, no validation); runs that shared the machine slow each "
        "other, so compare it only within one comparison. Collapse cells: seeds flagged, as s<seed>@<step>.",
        "",
        "## Compute accounting (the value tracker's initialisation counted)",
        "",
        compute_table(s),
        "",
        "All rollouts = the tracker's initialisation rollouts + training rollouts; generated tokens and "
        "wall-clock likewise (init + training). *... to target* here includes the initialisation, so a "
        "single-rollout method's 'half the steps' is checked against a group method on equal terms. "
        "≈: tokens estimated from mean response lengths (runs logged before the token counters).",
        "",
        "## Runs",
        "",
        runs_table(s),
        "",
        "## Curves",
        "",
        "Lines: mean over seeds; bands: min–max over seeds. Dashed line: the target.",
        "",
        *[f"![{X_LABELS[ax]}]({figures[ax]})" for ax in X_AXES if ax in figures],
        "",
        "## Definitions",
        "",
        f"- collapse detection: `mssr.algos.collapse.detect_collapse` with {thresholds} — entropy: the smoothed "
        "sampled-token entropy stays below entropy_frac × its running peak for `patience` steps; validation: "
        "accuracy stays more than val_margin below its best for `patience` evaluations;",
        "- KL to reference: "
        + ("; ".join(kl_keys) if kl_keys else "—")
        + " (`actor/kl_loss` is the k3 KL of the policy to the reference in the loss);",
        "- best validation accuracy includes the start-of-training evaluation (step 0); minimum and final "
        "entropy use training steps ≥ 1.",
        "",
    ]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------- figures
def plot_figures(s: Summary, out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10")
    written = {}
    for axis in X_AXES:
        fig, axes = plt.subplots(2, 3, figsize=(15, 8))
        for (name, label, _), ax in zip(METRICS, axes.flat, strict=False):
            for i, a in enumerate(s.arms):
                runs = s.curves.get(a.arm, [])
                band = aggregate(runs, name, axis)
                if not band.x:
                    continue
                c = colours(i % 10)
                marker = "o" if len(band.x) <= 12 else None
                ax.plot(band.x, band.mean, color=c, lw=1.6, marker=marker, ms=3, label=f"{a.arm} (n={a.n})")
                if max(band.n) > 1:
                    ax.fill_between(band.x, band.lo, band.hi, color=c, alpha=0.18, lw=0)
                if name == "entropy":
                    for run, r in zip(runs, a.runs, strict=True):
                        if r.entropy_collapse_step is not None and r.entropy_collapse_step in run.rollouts:
                            st = r.entropy_collapse_step
                            y = dict(run.series["entropy"]).get(st)
                            if y is not None:
                                ax.plot([run.x(axis, st)], [y], "x", color=c, ms=9, mew=2)
            if name == "val" and s.target is not None:
                ax.axhline(s.target, color="k", ls="--", lw=1, alpha=0.6)
            ax.set_title(label)
            ax.set_xlabel(X_LABELS[axis])
            ax.grid(alpha=0.3)
        legend_ax = axes.flat[-1]
        legend_ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        if not handles:
            handles, labels = axes.flat[1].get_legend_handles_labels()
        if handles:
            legend_ax.legend(handles, labels, loc="center", title="arm (seeds)")
        legend_ax.text(
            0.5,
            0.02,
            "lines: mean · bands: min–max over seeds\n× on entropy: collapse flagged",
            ha="center",
            va="bottom",
            transform=legend_ax.transAxes,
            fontsize=9,
        )
        fig.suptitle(f"mssr compare · {out.name} · against {X_LABELS[axis]}")
        fig.tight_layout()
        path = out / FIGURES[axis]
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written[axis] = FIGURES[axis]
    return written


def write_report(out: str | Path, reference: str | None = None, *, plots: bool = True) -> Path:
    """(Re)write ``report.md`` and (unless ``plots=False``) the curve PNGs of a compare directory."""
    out = Path(out)
    s = summarize(out, reference)
    meta = read_json(out / COMPARE_JSON, error=CompareError) if (out / COMPARE_JSON).exists() else {}
    figures = plot_figures(s, out) if plots else {}
    path = out / REPORT
    write_text_atomic(path, render_markdown(s, out, meta, figures))
    return path

"""Per-run curves read from a run's ``metrics.jsonl``, and their aggregation over seeds.

Three x axes per step: the step, the cumulative training rollouts (``train/rollouts``; 0 at step 0) and the
cumulative wall-clock of training compute (``init/time_s`` of the value-tracker initialisation, if any, plus
the sum of ``timing_s/step``; validation time is not included, so arms are compared on the work they do).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mssr.io import read_jsonl

# (name, label, metric keys in order of preference)
METRICS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("reward", "training reward (accuracy)", ("critic/score/mean",)),
    ("val", "validation accuracy", ("val/accuracy",)),
    ("entropy", "sampled-token entropy", ("actor/entropy",)),
    ("kl", "KL to reference (k3)", ("actor/kl_loss", "mssr/kl_rollout_ref")),
    ("length", "response length (tokens)", ("response_length/mean",)),
)
X_AXES = ("step", "rollouts", "wall")


@dataclass
class RunCurves:
    """One run's curves: ``series[name] = [(step, value), ...]`` plus the x axes at each step."""

    steps: list[int]
    rollouts: dict[int, float]
    wall: dict[int, float]
    series: dict[str, list[tuple[int, float]]]
    keys: dict[str, str] = field(default_factory=dict)  # which metric key fed each series
    init_rollouts: float = 0.0

    def x(self, axis: str, step: int) -> float:
        if axis == "step":
            return float(step)
        return (self.rollouts if axis == "rollouts" else self.wall)[step]

    @property
    def last_step(self) -> int:
        return self.steps[-1] if self.steps else 0


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def load_run_curves(metrics_path: Path) -> RunCurves:
    rows = sorted(read_jsonl(metrics_path, skip_invalid=True), key=lambda r: r.get("step", 0))
    by_step: dict[int, dict[str, Any]] = {}
    for r in rows:  # a resumed run never repeats a step, but keep the last line of a step to be safe
        by_step.setdefault(int(r.get("step", 0)), {}).update(r)
    steps = sorted(by_step)
    rollouts: dict[int, float] = {}
    wall: dict[int, float] = {}
    t = _num(by_step.get(0, {}).get("init/time_s")) or 0.0
    n = 0.0
    init_rollouts = 0.0
    for s in steps:
        r = by_step[s]
        if s > 0:
            t += _num(r.get("timing_s/step")) or 0.0
            n = _num(r.get("train/rollouts")) if _num(r.get("train/rollouts")) is not None else n
            init_rollouts = _num(r.get("train/init_rollouts")) or init_rollouts
        elif _num(r.get("init/rollouts")):
            init_rollouts = _num(r.get("init/rollouts")) or 0.0
        rollouts[s] = n
        wall[s] = t
    series: dict[str, list[tuple[int, float]]] = {}
    keys: dict[str, str] = {}
    for name, _, candidates in METRICS:
        for key in candidates:
            pts = [(s, v) for s in steps if (v := _num(by_step[s].get(key))) is not None]
            if pts:
                series[name], keys[name] = pts, key
                break
        else:
            series[name] = []
    return RunCurves(steps, rollouts, wall, series, keys, init_rollouts)


@dataclass
class Band:
    """Mean and min–max over seeds at each step of an arm (``n`` = seeds that have that step)."""

    x: list[float]
    mean: list[float]
    lo: list[float]
    hi: list[float]
    n: list[int]


def aggregate(runs: list[RunCurves], name: str, axis: str = "step") -> Band:
    """Mean ± min–max band of series ``name`` over runs, aligned by step; the x value of a step is the mean
    over runs of that step's x (identical for steps and rollouts; wall-clock differs per run)."""
    per_step: dict[int, list[tuple[float, float]]] = {}
    for run in runs:
        for s, v in run.series.get(name, []):
            per_step.setdefault(s, []).append((run.x(axis, s), v))
    band = Band([], [], [], [], [])
    for s in sorted(per_step):
        xs, vs = zip(*per_step[s], strict=True)
        band.x.append(statistics.fmean(xs))
        band.mean.append(statistics.fmean(vs))
        band.lo.append(min(vs))
        band.hi.append(max(vs))
        band.n.append(len(vs))
    return band

"""Summaries of evaluation results and the Table-1-style tables (benchmarks as columns, then Avg).

Everything here is recomputed from the per-item JSONL files (:mod:`mssr.evaluation.results`), so a table
always reflects exactly the items on disk.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mssr.evaluation.passk import mean_pass_at_k
from mssr.evaluation.results import ResultsError, ResultStore


@dataclass
class BenchmarkSummary:
    """One benchmark of one run. ``accuracy`` is pass@1 (mean of c/n over items) as a fraction.

    ``complete``: every item of the benchmark (as loaded, after ``--limit``) has a result.
    """

    name: str
    title: str
    n_items: int
    n_done: int
    samples_per_item: int
    accuracy: float
    pass_at: dict[int, float] = field(default_factory=dict)
    truncated_frac: float = 0.0
    mean_tokens: float = 0.0
    time_s: float = 0.0
    reward_failures: int = 0
    by_category: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.n_done >= self.n_items

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["complete"] = self.complete
        d["pass_at"] = {str(k): v for k, v in self.pass_at.items()}
        return d


@dataclass
class RunSummary:
    """All benchmarks of one evaluated model, in evaluation order."""

    label: str
    model: str
    benchmarks: dict[str, BenchmarkSummary] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "model": self.model,
            "benchmarks": {k: v.to_dict() for k, v in self.benchmarks.items()},
            "average_pass@1": average(self, "pass@1"),
        }


def summarize(
    rows: Iterable[dict[str, Any]], *, name: str, title: str, n_items: int, ks: Sequence[int] = (1,)
) -> BenchmarkSummary:
    """Aggregate result rows of one benchmark (pass@k over the k ≤ samples per item)."""
    rows = list(rows)
    counts = [(int(r["n"]), int(r["c"])) for r in rows]
    samples = [s for r in rows for s in r["samples"]]
    n_per = max((n for n, _ in counts), default=0)
    cats: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for r, nc in zip(rows, counts, strict=True):
        if r.get("category") is not None:
            cats[str(r["category"])].append(nc)
    return BenchmarkSummary(
        name=name,
        title=title,
        n_items=n_items,
        n_done=len(rows),
        samples_per_item=n_per,
        accuracy=mean_pass_at_k(counts, 1),
        pass_at={
            k: mean_pass_at_k(counts, k) for k in ks if 1 <= k <= min((n for n, _ in counts), default=0)
        },
        truncated_frac=sum(bool(s["truncated"]) for s in samples) / len(samples) if samples else 0.0,
        mean_tokens=sum(int(s["tokens"]) for s in samples) / len(samples) if samples else 0.0,
        time_s=sum(float(r.get("time_s", 0.0)) for r in rows),
        reward_failures=sum(s.get("score") is None for s in samples),
        by_category={
            k: {"n": float(len(v)), "accuracy": mean_pass_at_k(v, 1)} for k, v in sorted(cats.items())
        },
    )


def load_run(path: str | Path, ks: Sequence[int] | None = None) -> RunSummary:
    """Re-read an evaluation directory (``run.json`` + ``results/*.jsonl``) into a :class:`RunSummary`."""
    root = Path(path)
    meta_path = root / "run.json"
    if not meta_path.is_file():
        raise ResultsError(f"{root}: not an evaluation directory (no run.json)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    run = RunSummary(label=meta.get("label") or root.name, model=str(meta.get("model", "")))
    for name, info in meta.get("benchmarks", {}).items():
        store = ResultStore(root / "results" / f"{name}.jsonl")
        rows = store.load().values()
        want = ks if ks is not None else tuple(info.get("protocol", {}).get("ks", (1,)))
        run.benchmarks[name] = summarize(
            rows, name=name, title=info.get("title", name), n_items=int(info["n_items"]), ks=want
        )
    return run


def average(run: RunSummary, metric: str = "pass@1", names: Sequence[str] | None = None) -> float | None:
    """The unweighted mean of ``metric`` over ``names`` (default: all of the run's benchmarks), as the paper's
    Avg column; ``None`` if one is missing or incomplete."""
    names = list(names) if names is not None else list(run.benchmarks)
    values = []
    for n in names:
        b = run.benchmarks.get(n)
        if b is None or not b.complete:
            return None
        v = _metric(b, metric)
        if v is None:
            return None
        values.append(v)
    return sum(values) / len(values) if values else None


def _metric(b: BenchmarkSummary, metric: str) -> float | None:
    if metric == "pass@1":
        return b.accuracy
    k = int(metric.split("@", 1)[1])
    return b.pass_at.get(k)


def format_table(
    runs: Sequence[RunSummary], metric: str = "pass@1", benchmarks: Sequence[str] | None = None
) -> str:
    """A Markdown table: one row per run, one column per benchmark (``metric`` in %, one decimal), then Avg.

    A cell of a benchmark not evaluated to the end shows the score so far with ``*`` and its item count; Avg
    is left blank (``–``) unless every column is complete.
    """
    names: list[str] = list(benchmarks) if benchmarks is not None else []
    titles: dict[str, str] = {}
    for run in runs:
        for n, b in run.benchmarks.items():
            titles.setdefault(n, b.title)
            if benchmarks is None and n not in names:
                names.append(n)
    head = ["Model", *[titles.get(n, n) for n in names], "Avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    partial = False
    for run in runs:
        cells = [run.label]
        for n in names:
            b = run.benchmarks.get(n)
            v = _metric(b, metric) if b is not None else None
            if b is None or v is None:
                cells.append("–")
            elif b.complete:
                cells.append(f"{100 * v:.1f}")
            else:
                partial = True
                cells.append(f"{100 * v:.1f}* ({b.n_done}/{b.n_items})")
        avg = average(run, metric, names)
        cells.append("–" if avg is None else f"{100 * avg:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    if partial:
        table += "\n\n\\* incomplete: score over the items evaluated so far (resume the run to finish)."
    return table


def format_details(run: RunSummary) -> str:
    """Per-benchmark lines: items, pass@k, truncation, tokens, time, reward failures."""
    out = []
    for b in run.benchmarks.values():
        ks = ", ".join(f"pass@{k} {100 * v:.1f}" for k, v in sorted(b.pass_at.items()))
        out.append(
            f"{b.title}: {b.n_done}/{b.n_items} items × {b.samples_per_item} sample(s); {ks or 'no results'}; "
            f"truncated {100 * b.truncated_frac:.1f}%; {b.mean_tokens:.1f} tokens/response; "
            f"{b.time_s:.1f} s; reward failures {b.reward_failures}"
        )
    return "\n".join(out)

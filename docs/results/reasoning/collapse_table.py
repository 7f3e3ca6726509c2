"""Per-arm collapse statistics of a `mssr compare` directory, as a markdown table.

    python docs/results/reasoning/collapse_table.py DIR [--floor 0.05] [--at 10,20,30,50]

Per arm, mean ± sample std over seeds (``k/n``: seeds that reach it): sampled validation accuracy at the given
steps; the first validation step at or below ``--floor`` ("collapsed to zero"; the report's collapse flag
fires at the earliest possible evaluation in every arm when validation is sparse, so this finer measure says
*how much later* one arm falls); the sampled-token entropy (mean of steps 1–5 and of the last 5 steps, and its
minimum); the mean response length and truncated fraction over the last 5 steps; the training reward over
the last 5 steps.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from mssr.experiments.runner import load_manifest
from mssr.io import read_jsonl


def _stat(xs: list[float], spec: str = ".3f") -> str:
    if not xs:
        return "—"
    s = format(statistics.fmean(xs), spec)
    return s + (f" ± {format(statistics.stdev(xs), spec)}" if len(xs) > 1 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--floor", type=float, default=0.05)
    ap.add_argument("--at", default="10,20,30,50")
    args = ap.parse_args()
    at = [int(x) for x in args.at.split(",")]
    out = Path(args.dir)
    arms: dict[str, list[list[dict]]] = {}
    for rec in load_manifest(out).values():
        path = out / rec.dir / "metrics.jsonl"
        if path.exists():
            rows = sorted(read_jsonl(path, skip_invalid=True), key=lambda r: r.get("step", 0))
            arms.setdefault(rec.arm, []).append(rows)
    head = ["arm", "seeds", *[f"val @ {s}" for s in at], f"first val ≤ {args.floor}", "entropy steps 1–5",
            "entropy last 5", "min entropy", "length last 5", "truncated last 5", "train reward last 5"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for arm, runs in arms.items():
        vals = {s: [] for s in at}
        first, ent0, ent1, emin, length, trunc, reward = [], [], [], [], [], [], []
        for rows in runs:
            val = {r["step"]: r["val/accuracy"] for r in rows if "val/accuracy" in r}
            for s in at:
                if s in val:
                    vals[s].append(val[s])
            hit = next((s for s in sorted(val) if val[s] <= args.floor), None)
            if hit is not None:
                first.append(hit)
            steps = [r for r in rows if "actor/entropy" in r]
            ent0.append(statistics.fmean(r["actor/entropy"] for r in steps[:5]))
            ent1.append(statistics.fmean(r["actor/entropy"] for r in steps[-5:]))
            emin.append(min(r["actor/entropy"] for r in steps))
            length.append(statistics.fmean(r["response_length/mean"] for r in steps[-5:]))
            trunc.append(statistics.fmean(r["response_length/clip_ratio"] for r in steps[-5:]))
            reward.append(statistics.fmean(r["critic/score/mean"] for r in steps[-5:]))
        cells = [arm, str(len(runs)), *[_stat(vals[s]) for s in at]]
        cells.append(f"{_stat(first, '.0f')} ({len(first)}/{len(runs)})")
        cells += [_stat(ent0, ".4f"), _stat(ent1, ".4f"), _stat(emin, ".4f"), _stat(length, ".1f"),
                  _stat(trunc, ".2f"), _stat(reward)]  # fmt: skip
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

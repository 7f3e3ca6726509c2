"""Paired difference of two `mssr eval` results on the same items: per family and overall accuracy (mean of
c/n per item), the difference B − A with a 95 % bootstrap interval over items (the same resampled items for
both), and the share of resamples in which B beats A.

    python docs/results/reasoning/paired_eval.py evals/rl/base evals/rl/step200 [--boot 10000] [--seed 0]

Each argument is an eval directory (``OUT/LABEL`` of `mssr eval`, holding ``results/*.jsonl``); only items
present in both are compared. Several samples per item (``--samples 8``) make the per-item accuracy less noisy;
the interval is over items, so it counts the item draw as well as the sampling.
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from pathlib import Path

from mssr.evaluation.paired import paired_bootstrap
from mssr.evaluation.results import ResultStore


def load(eval_dir: Path) -> dict[str, tuple[str, float]]:
    """``{item id: (family, c/n)}`` from every results file of an eval directory."""
    items: dict[str, tuple[str, float]] = {}
    files = sorted((eval_dir / "results").glob("*.jsonl"))
    if not files:
        raise SystemExit(f"{eval_dir}: no results/*.jsonl (not an `mssr eval` output directory)")
    for f in files:  # read with the evaluator's own reader: validated, a torn last line dropped
        for rid, r in ResultStore(f).load().items():
            items[f"{f.stem}/{rid}"] = (r.get("category") or "all", r["c"] / r["n"])
    return items


def paired(
    a: list[float], b: list[float], boot: int, rng: random.Random
) -> tuple[float, float, float, float]:
    """``(difference, low, high, share of resamples with B > A)``: :func:`mssr.evaluation.paired.paired_bootstrap`."""
    return paired_bootstrap(a, b, boot, rng)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path, help="eval directory A (e.g. the base)")
    p.add_argument("b", type=Path, help="eval directory B (e.g. the trained policy)")
    p.add_argument("--boot", type=int, default=10000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    ra, rb = load(args.a), load(args.b)
    common = sorted(set(ra) & set(rb))
    if not common:
        raise SystemExit("no item is in both evaluations")
    groups: dict[str, list[str]] = defaultdict(list)
    for k in common:
        groups[ra[k][0]].append(k)
    rng = random.Random(args.seed)
    print(f"A = {args.a}\nB = {args.b}\n{len(common)} paired items, {args.boot} bootstrap resamples\n")
    print("| family | items | A | B | B − A | 95 % interval | P(B > A) |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for name, keys in [*sorted(groups.items()), ("all", common)]:
        a = [ra[k][1] for k in keys]
        b = [rb[k][1] for k in keys]
        d, lo, hi, win = paired(a, b, args.boot, rng)
        print(
            f"| {name} | {len(keys)} | {sum(a) / len(a):.3f} | {sum(b) / len(b):.3f} | {d:+.3f} | "
            f"[{lo:+.3f}, {hi:+.3f}] | {win:.3f} |"
        )


if __name__ == "__main__":
    main()

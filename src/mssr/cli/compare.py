"""``mssr compare``: algorithms × seeds (× variants) at equal rollouts per step, then a report (docs/compare.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HELP = "compare algorithms (default mssr, mvsr, grpo) over seeds at equal rollouts per step, with a report"

DEFAULT_BASE = "configs/cpu/mssr.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--algorithms", default=None, help="comma-separated (default: mssr,mvsr,grpo)")
    p.add_argument("--seeds", default=None, help="e.g. 0,1,2 or 0-4 (default: 0-4; --quick: 0)")
    p.add_argument(
        "--base",
        default=None,
        help=f"shared base YAML (default: {DEFAULT_BASE} when it exists here, else the built-in defaults)",
    )
    p.add_argument("--out", default=None, help="compare directory (default: runs/compare-<base>-<hash>)")
    p.add_argument("--parallel", type=int, default=None, help="runs at a time (default 1; --quick: 2)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads per run (default: cores ÷ parallel)"
    )
    p.add_argument(
        "--variants",
        default=None,
        help="named variants 'name:key=value,key=value;name2:...'; a name starting with an algorithm "
        "(mssr_full) or setting algorithm.name is one arm of it, others apply to every algorithm",
    )
    p.add_argument("--variant-seeds", default=None, help="seeds of the variant arms (default: --seeds)")
    p.add_argument("--reference", default="grpo", help="arm whose final validation accuracy is the target")
    p.add_argument("--quick", action="store_true", help="the small documented setting (<= 15 min on 2 cores)")
    p.add_argument("--report-only", metavar="DIR", default=None, help="only (re)write DIR's report")
    p.add_argument("--no-report", action="store_true", help="do not write the report after running")
    p.add_argument(
        "--dry-run", action="store_true", help="print the planned runs and their overrides, run none"
    )
    p.add_argument(
        "overrides", nargs="*", help="key=value overrides for every run, e.g. steps=100 optim.lr=3e-4"
    )


def run(args: argparse.Namespace) -> int:
    from mssr.experiments import (
        QUICK_ALGORITHMS,
        QUICK_OVERRIDES,
        QUICK_SEEDS,
        CompareError,
        parse_algorithms,
        parse_seeds,
        parse_variants,
        plan_compare,
        run_compare,
        write_report,
    )

    try:
        if args.report_only:
            path = write_report(args.report_only, None if args.reference == "grpo" else args.reference)
            print(f"report: {path}")
            return 0
        algorithms = parse_algorithms(
            args.algorithms or (",".join(QUICK_ALGORITHMS) if args.quick else "mssr,mvsr,grpo")
        )
        seeds = parse_seeds(args.seeds or (",".join(map(str, QUICK_SEEDS)) if args.quick else "0-4"))
        variant_seeds = parse_seeds(args.variant_seeds) if args.variant_seeds else None
        overrides = (*(QUICK_OVERRIDES if args.quick else ()), *args.overrides)
        base = (
            args.base if args.base is not None else (DEFAULT_BASE if Path(DEFAULT_BASE).is_file() else None)
        )
        out = args.out or ("runs/compare-quick" if args.quick else None)
        plan = plan_compare(
            base=base,
            algorithms=algorithms,
            seeds=seeds,
            variants=parse_variants(args.variants),
            variant_seeds=variant_seeds,
            overrides=tuple(overrides),
            out=out,
            reference=args.reference,
        )
        if args.dry_run:
            print(
                f"compare directory: {plan.out}\nbase: {plan.base}\nshared overrides: {list(plan.shared_overrides)}"
            )
            for r in plan.runs:
                print(f"  {r.id:<32} {' '.join(o for o in r.overrides if not o.startswith('output_dir='))}")
            return 0
        parallel = args.parallel if args.parallel is not None else (2 if args.quick else 1)
        t0 = time.perf_counter()
        result = run_compare(
            plan, parallel=parallel, threads=args.threads, argv=["mssr", "compare", *sys.argv[2:]]
        )
        print(f"mssr compare: {time.perf_counter() - t0:.0f} s")
        if not args.no_report:
            print(f"report: {write_report(plan.out, args.reference)}")
    except CompareError as e:
        print(f"mssr compare: {e}", file=sys.stderr)
        return 2
    if result.interrupted:
        return 130
    if result.failed:
        print(
            f"mssr compare: failed runs (their train.log says why): {', '.join(result.failed)}",
            file=sys.stderr,
        )
        return 1
    return 0

"""Experiments: many trainings and their report (``mssr compare``; docs/compare.md).

``plan_compare(...)`` resolves arms × seeds into validated run configs, ``run_compare(plan, parallel=N)`` runs
them as resumable subprocesses, ``write_report(out)`` writes ``report.md`` and the curve PNGs.
"""

from mssr.experiments.plan import (
    QUICK_ALGORITHMS,
    QUICK_OVERRIDES,
    QUICK_SEEDS,
    Arm,
    CompareError,
    ComparePlan,
    RunSpec,
    Variant,
    parse_algorithms,
    parse_seeds,
    parse_variants,
    plan_compare,
)
from mssr.experiments.report import Summary, summarize, write_report
from mssr.experiments.runner import CompareResult, run_compare, run_status

__all__ = [
    "QUICK_ALGORITHMS",
    "QUICK_OVERRIDES",
    "QUICK_SEEDS",
    "Arm",
    "CompareError",
    "ComparePlan",
    "CompareResult",
    "RunSpec",
    "Summary",
    "Variant",
    "parse_algorithms",
    "parse_seeds",
    "parse_variants",
    "plan_compare",
    "run_compare",
    "run_status",
    "summarize",
    "write_report",
]

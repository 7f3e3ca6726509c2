"""Benchmark adapters for ``mssr eval``: each reads one benchmark's published files into
:class:`~mssr.evaluation.benchmarks.base.BenchItem` s carrying its grading convention.

Registered: builtin, hallusionbench, jsonl (``jsonl:PATH``), logicvista, mathverse, mathvista, mmk12,
r1onevision, wemath; ``paper`` names the five of the paper's Table 1. Layouts: ``docs/evaluation.md``.
"""

from mssr.evaluation.benchmarks import (  # noqa: F401  (register the adapters)
    hallusionbench,
    local,
    logicvista,
    mathverse,
    mathvista,
    mmk12,
    r1onevision,
    wemath,
)
from mssr.evaluation.benchmarks.base import (
    GRADINGS,
    PAPER_BENCHMARKS,
    BenchItem,
    Benchmark,
    BenchmarkData,
    UnknownBenchmarkError,
    available,
    expand,
    get,
    register,
)
from mssr.evaluation.benchmarks.readers import BenchmarkDataError, ImageRef, read_rows

__all__ = [
    "GRADINGS",
    "PAPER_BENCHMARKS",
    "BenchItem",
    "Benchmark",
    "BenchmarkData",
    "BenchmarkDataError",
    "ImageRef",
    "UnknownBenchmarkError",
    "available",
    "expand",
    "get",
    "read_rows",
    "register",
]

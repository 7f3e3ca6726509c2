"""Benchmark adapters, one per benchmark: each reads its benchmark's published files into
:class:`~mssr.evaluation.benchmarks.base.BenchItem` s carrying its grading convention (``mssr eval``) and, where
it supports them, a system's published responses into :class:`~mssr.evaluation.benchmarks.base.GradeItem` s
(``mssr grade``; :func:`gradable` lists those benchmarks).

Registered: builtin, hallusionbench, jsonl (``jsonl:PATH``), logicvista, mathverse, mathvista, mmk12,
r1onevision, wemath; ``paper`` names the five of the paper's Table 1. Responses: mathvista. Layouts:
``docs/evaluation.md``.
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
    GradeItem,
    UnknownBenchmarkError,
    available,
    expand,
    get,
    gradable,
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
    "GradeItem",
    "ImageRef",
    "UnknownBenchmarkError",
    "available",
    "expand",
    "get",
    "gradable",
    "read_rows",
    "register",
]

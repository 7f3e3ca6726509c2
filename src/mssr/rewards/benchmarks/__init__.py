"""Benchmark formats for ``mssr grade``: how to read a benchmark's problems and a system's responses, and
how that benchmark scores an answer.

A format is a class registered under a name::

    @register_benchmark("mybench")
    class MyBench(BenchmarkFormat):
        breakdown_keys = ("answer_type", "category")

        def load(self, problems: Path, responses: Path) -> list[GradeItem]: ...

        # optional: the benchmark's own scoring; the default is mssr's verifier in the requested mode
        def verify(self, item: GradeItem, mode: str) -> Verdict: ...

``load`` must raise :class:`BenchmarkFormatError` naming the file and the problem id for malformed input.
Built-in: ``mathvista``. MathVerse, MMK12, WeMath, HallusionBench, R1-Onevision-Bench and LogicVista fit the
same shape (question, optional choices, gold answer, answer type, optional official verdict per response).
"""

from __future__ import annotations

from mssr.rewards.benchmarks import mathvista as _mathvista  # noqa: F401  (registers "mathvista")
from mssr.rewards.benchmarks.base import (
    BenchmarkFormat,
    BenchmarkFormatError,
    GradeItem,
    available_benchmarks,
    get_benchmark,
    register_benchmark,
)

__all__ = [
    "BenchmarkFormat",
    "BenchmarkFormatError",
    "GradeItem",
    "available_benchmarks",
    "get_benchmark",
    "register_benchmark",
]

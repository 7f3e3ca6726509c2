"""Evaluation: the one generate-and-grade path (:func:`evaluate`, also used by training's validation),
benchmark adapters (one reader per benchmark), resumable per-item results, pass@k and Table-1-style summaries
(``mssr eval``), and the regrading of a system's published responses (:mod:`~mssr.evaluation.regrade`,
``mssr grade``).

Python API::

    from mssr.evaluation import EvalSettings, BenchmarkRun, evaluate_policy, benchmarks

    data = benchmarks.get("logicvista").load("benchmarks/logicvista")
    summary = evaluate_policy(policy, [BenchmarkRun(data, EvalSettings(max_new_tokens=512))],
                              "evals/my-model", label="my-model", model="path/to/policy")

See ``docs/evaluation.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mssr.evaluation import benchmarks, regrade
    from mssr.evaluation.evaluator import EvalResult, ItemResult, SampleResult, evaluate
    from mssr.evaluation.grading import BenchmarkReward, explain
    from mssr.evaluation.passk import mean_pass_at_k, pass_at_k
    from mssr.evaluation.results import ResultsError, ResultStore
    from mssr.evaluation.runner import (
        BenchmarkRun,
        EvalSettings,
        evaluate_policy,
        run_benchmark,
        write_summary,
    )
    from mssr.evaluation.summary import BenchmarkSummary, RunSummary, format_table, load_run, summarize

# The names below are imported on first use: ``mssr grade`` and its worker processes read benchmark files and
# verify answers (``benchmarks``, ``regrade``) without importing torch, which the generate path needs.
_WHERE = {
    "BenchmarkReward": "grading",
    "explain": "grading",
    "EvalResult": "evaluator",
    "ItemResult": "evaluator",
    "SampleResult": "evaluator",
    "evaluate": "evaluator",
    "mean_pass_at_k": "passk",
    "pass_at_k": "passk",
    "ResultStore": "results",
    "ResultsError": "results",
    "BenchmarkRun": "runner",
    "EvalSettings": "runner",
    "evaluate_policy": "runner",
    "run_benchmark": "runner",
    "write_summary": "runner",
    "BenchmarkSummary": "summary",
    "RunSummary": "summary",
    "format_table": "summary",
    "load_run": "summary",
    "summarize": "summary",
}
_SUBMODULES = ("benchmarks", "regrade")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE, *_SUBMODULES])


__all__ = [
    "BenchmarkReward",
    "BenchmarkRun",
    "BenchmarkSummary",
    "EvalResult",
    "EvalSettings",
    "ItemResult",
    "ResultStore",
    "ResultsError",
    "RunSummary",
    "SampleResult",
    "benchmarks",
    "evaluate",
    "evaluate_policy",
    "explain",
    "format_table",
    "load_run",
    "mean_pass_at_k",
    "pass_at_k",
    "regrade",
    "run_benchmark",
    "summarize",
    "write_summary",
]

"""Evaluation: the one generate-and-grade path (:func:`evaluate`, also used by training's validation),
benchmark adapters, resumable per-item results, pass@k and Table-1-style summaries (``mssr eval``).

Python API::

    from mssr.evaluation import EvalSettings, BenchmarkRun, evaluate_policy, benchmarks

    data = benchmarks.get("logicvista").load("benchmarks/logicvista")
    summary = evaluate_policy(policy, [BenchmarkRun(data, EvalSettings(max_new_tokens=512))],
                              "evals/my-model", label="my-model", model="path/to/policy")

See ``docs/evaluation.md``.
"""

from mssr.evaluation import benchmarks
from mssr.evaluation.evaluator import EvalResult, ItemResult, SampleResult, evaluate
from mssr.evaluation.grading import BenchmarkReward, explain
from mssr.evaluation.passk import mean_pass_at_k, pass_at_k
from mssr.evaluation.results import ResultsError, ResultStore
from mssr.evaluation.runner import BenchmarkRun, EvalSettings, evaluate_policy, run_benchmark, write_summary
from mssr.evaluation.summary import BenchmarkSummary, RunSummary, format_table, load_run, summarize

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
    "run_benchmark",
    "summarize",
    "write_summary",
]

"""Subprocess of test_resume_after_sigkill: evaluates a fixture benchmark slowly (fake engine, 0.2 s per chunk)
until it is killed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.evaluation.helpers import FakeEngine, FakeProcessor
from tests.evaluation.test_resume import right_when_even

from mssr.evaluation import EvalSettings, ResultStore, benchmarks, run_benchmark


def slow(text: str, j: int) -> str:
    time.sleep(0.1)
    return right_when_even(text, j)


if __name__ == "__main__":
    data = benchmarks.get("jsonl").load(sys.argv[1])
    store = ResultStore(sys.argv[2])
    run_benchmark(FakeEngine(slow), FakeProcessor(), data, EvalSettings(batch_size=2), store, progress=None)

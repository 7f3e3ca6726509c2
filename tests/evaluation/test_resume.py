"""Per-item results and resume: an interrupted evaluation (Ctrl-C, or a kill during a write) continues where
it stopped — no item evaluated twice, none lost — and refuses to mix protocols or models."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mssr.evaluation import (
    BenchmarkRun,
    EvalSettings,
    ResultsError,
    ResultStore,
    benchmarks,
    evaluate_policy,
    load_run,
    run_benchmark,
)
from mssr.evaluation.passk import mean_pass_at_k

from .helpers import FakeEngine, item_number, save_png

N_ITEMS = 10


def make_bench(tmp_path: Path, n: int = N_ITEMS):
    rows = []
    for i in range(n):
        save_png(tmp_path / "img" / f"{i}.png", "red")
        rows.append(
            {
                "id": f"q{i}",
                "question": f"Question number {i}: what?",
                "images": [f"img/{i}.png"],
                "answer": str(i),
            }
        )
    p = tmp_path / "bench.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return benchmarks.get("jsonl").load(p)


def right_when_even(text: str, j: int) -> str:
    i = item_number(text)
    return rf"<think>t</think> \boxed{{{i if i % 2 == 0 else i + 100}}}"


def generated_items(engine: FakeEngine) -> list[int]:
    return [item_number(t) for call in engine.calls for t in call]


SETTINGS = EvalSettings(batch_size=3, max_new_tokens=8)


def test_interrupted_run_resumes_without_repeats_or_losses(tmp_path, fake_processor):
    data = make_bench(tmp_path)
    store = ResultStore(tmp_path / "out" / "bench.jsonl")
    first = FakeEngine(right_when_even, interrupt_after=2)  # Ctrl-C during the third chunk
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(first, fake_processor, data, SETTINGS, store, progress=None)
    assert generated_items(first) == list(range(6))
    assert sorted(store.load()) == [f"q{i}" for i in range(6)]

    second = FakeEngine(right_when_even)
    summary = run_benchmark(second, fake_processor, data, SETTINGS, store, progress=None)
    assert generated_items(second) == list(range(6, N_ITEMS))  # only what was missing
    lines = store.path.read_text().splitlines()
    assert sorted(json.loads(x)["id"] for x in lines) == sorted(f"q{i}" for i in range(N_ITEMS))  # once each
    assert summary.complete and summary.n_done == N_ITEMS and summary.accuracy == pytest.approx(0.5)

    third = FakeEngine(right_when_even)  # a finished benchmark generates nothing
    run_benchmark(third, fake_processor, data, SETTINGS, store, progress=None)
    assert third.calls == []


def test_kill_during_a_write_loses_only_the_torn_line(tmp_path, fake_processor):
    data = make_bench(tmp_path)
    reference = ResultStore(tmp_path / "ref.jsonl")
    run_benchmark(FakeEngine(right_when_even), fake_processor, data, SETTINGS, reference, progress=None)
    ref_lines = reference.path.read_bytes().splitlines(keepends=True)
    torn = ResultStore(tmp_path / "torn.jsonl")
    torn.path.write_bytes(b"".join(ref_lines[:4]) + ref_lines[4][:25])  # killed while writing item 4
    assert sorted(torn.load()) == ["q0", "q1", "q2", "q3"]
    assert torn.path.read_bytes() == b"".join(ref_lines[:4])  # the torn tail is removed
    engine = FakeEngine(right_when_even)
    run_benchmark(engine, fake_processor, data, SETTINGS, torn, progress=None)
    assert generated_items(engine) == list(range(4, N_ITEMS))
    strip = lambda rows: {k: {**v, "time_s": 0} for k, v in rows.items()}  # noqa: E731
    assert strip(torn.load()) == strip(reference.load())


def test_complete_last_line_without_newline_is_kept(tmp_path):
    store = ResultStore(tmp_path / "r.jsonl")
    store.path.write_text('{"id": "a", "n": 1}\n{"id": "b", "n": 1}')
    assert sorted(store.load()) == ["a", "b"]
    store.append([{"id": "c", "n": 1}])
    assert sorted(store.load()) == ["a", "b", "c"]


def test_corruption_inside_the_file_is_an_error(tmp_path):
    store = ResultStore(tmp_path / "r.jsonl")
    store.path.write_text('{"id": "a"}\n{"id": \n{"id": "c"}\n')
    with pytest.raises(ResultsError, match=r"r\.jsonl: line 2 is not valid JSON"):
        store.load()
    store.path.write_text('{"id": "a"}\n{"id": "a"}\n')
    with pytest.raises(ResultsError, match="item 'a' appears twice"):
        store.load()


def test_results_of_another_benchmark_version_are_refused(tmp_path, fake_processor):
    data = make_bench(tmp_path)
    store = ResultStore(tmp_path / "r.jsonl")
    store.append([{"id": "zz", "n": 1, "c": 0, "samples": []}])
    with pytest.raises(ResultsError, match=r"items not in .*bench\.jsonl"):
        run_benchmark(FakeEngine(right_when_even), fake_processor, data, SETTINGS, store, progress=None)


def _policy(processor):
    return SimpleNamespace(model=torch.nn.Linear(1, 1), processor=processor)


def test_resume_refuses_other_protocol_or_model(tmp_path, fake_processor):
    data = make_bench(tmp_path, 4)
    out = tmp_path / "eval"
    policy = _policy(fake_processor)
    kw = dict(label="m", model="path/a", engine=FakeEngine(right_when_even), progress=None)
    evaluate_policy(policy, [BenchmarkRun(data, SETTINGS)], out, **kw)
    with pytest.raises(ResultsError, match=r"other settings .*max_new_tokens.*\(8, 16\)"):
        evaluate_policy(policy, [BenchmarkRun(data, SETTINGS.replace(max_new_tokens=16))], out, **kw)
    with pytest.raises(ResultsError, match="holds an evaluation of 'path/a', not 'path/b'"):
        evaluate_policy(policy, [BenchmarkRun(data, SETTINGS)], out, **{**kw, "model": "path/b"})
    # speed-only settings may change on resume
    evaluate_policy(policy, [BenchmarkRun(data, SETTINGS.replace(batch_size=1, num_workers=0))], out, **kw)


def test_pass_at_k_from_sampled_counts(tmp_path, fake_processor):
    """Item i gets c_i = i % 5 correct responses out of 4 samples (hand-made counts, capped at 4)."""
    data = make_bench(tmp_path, 8)
    counts = {i: min(i % 5, 4) for i in range(8)}

    def respond(text: str, j: int) -> str:
        i = item_number(text)
        return rf"\boxed{{{i if j < counts[i] else -1}}}"

    settings = SETTINGS.replace(samples=4, ks=(1, 2, 4), temperature=0.7)
    out = tmp_path / "eval"
    engine = FakeEngine(respond)
    summary = evaluate_policy(
        _policy(fake_processor),
        [BenchmarkRun(data, settings)],
        out,
        label="m",
        model="x",
        engine=engine,
        progress=None,
    )
    b = summary.benchmarks["bench"]
    pairs = [(4, counts[i]) for i in range(8)]
    for k in (1, 2, 4):
        assert b.pass_at[k] == pytest.approx(mean_pass_at_k(pairs, k))
    assert b.accuracy == pytest.approx(sum(counts.values()) / 32)
    assert all(kw["n"] == 4 and kw["greedy"] is False and kw["temperature"] == 0.7 for kw in engine.kwargs)
    again = load_run(out).benchmarks["bench"]  # recomputed from the JSONL file
    assert again.pass_at == b.pass_at and again.n_done == 8
    assert "pass@4" in (out / "summary.md").read_text()
    with pytest.raises(ValueError, match="pass@k needs 1 <= k <= samples"):
        SETTINGS.replace(samples=2, ks=(4,))


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path, fake_processor):
    """A real kill (SIGKILL, no clean-up) of a running evaluation, then resume in this process."""
    import signal
    import subprocess
    import sys
    import time

    data = make_bench(tmp_path, 40)
    results = tmp_path / "killed.jsonl"
    worker = Path(__file__).with_name("kill_worker.py")
    proc = subprocess.Popen([sys.executable, str(worker), str(tmp_path / "bench.jsonl"), str(results)])
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if results.is_file() and results.read_bytes().count(b"\n") >= 6:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    store = ResultStore(results)
    done = store.load()
    assert 6 <= len(done) < 40, "the worker must be killed mid-run"
    engine = FakeEngine(right_when_even)
    run_benchmark(engine, fake_processor, data, SETTINGS, store, progress=None)
    regenerated = {f"q{i}" for i in generated_items(engine)}
    assert regenerated.isdisjoint(done)  # nothing evaluated twice
    ids = [json.loads(x)["id"] for x in results.read_text().splitlines()]
    assert sorted(ids) == sorted(f"q{i}" for i in range(40))  # nothing lost, each once

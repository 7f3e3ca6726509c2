"""The runner with a fake trainer (no model): skip finished runs, resume failed/partial ones, parallel slots,
config-change protection, more steps, the directory lock."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from mssr.experiments.plan import CompareError, plan_compare
from mssr.experiments.runner import (
    COMPARE_JSON,
    LOCK,
    checkpoint_step,
    load_manifest,
    portable_argv,
    run_compare,
    run_status,
    save_manifest,
)

OV = ("steps=3", "rollout.rollouts_per_step=8", "val.every=1")


def _plan(out: Path, *overrides: str, algorithms=("mssr", "grpo"), seeds=(0,)):
    return plan_compare(base=None, algorithms=algorithms, seeds=seeds, overrides=(*OV, *overrides), out=out)


def _launches(out: Path, rid: str) -> list[int]:
    p = out / "runs" / rid / "launches.txt"
    return [int(x) for x in p.read_text().split()] if p.exists() else []


@pytest.fixture
def run(fake_command):
    def _run(plan, **kw):
        return run_compare(plan, command=fake_command, prepare=False, poll_s=0.05, log=lambda _: None, **kw)

    return _run


def test_runs_then_skips_finished(tmp_path, run):
    out = tmp_path / "cmp"
    res = run(_plan(out), parallel=2)
    assert sorted(res.launched) == ["grpo/seed0", "mssr/seed0"] and not res.failed
    recs = load_manifest(out)
    assert {r.status for r in recs.values()} == {"done"} and {r.step for r in recs.values()} == {3}
    assert all(r.attempts == 1 and r.returncode == 0 for r in recs.values())
    # the exact config is kept beside the run, and the subprocess got the run's output_dir
    cfg = (out / "runs/mssr/seed0/run.yaml").read_text()
    assert "name: mssr" in cfg and str((out / "runs/mssr/seed0").resolve()) in cfg
    assert "attempt 1" in (out / "runs/mssr/seed0/train.log").read_text()

    again = run(_plan(out), parallel=2)
    assert again.launched == []  # nothing relaunched
    assert _launches(out, "mssr/seed0") == [0] and _launches(out, "grpo/seed0") == [0]
    assert len(json.loads((out / COMPARE_JSON).read_text())["invocations"]) == 2


def test_failed_run_is_recorded_then_resumed(tmp_path, monkeypatch, run):
    out = tmp_path / "cmp"
    monkeypatch.setenv("FAKE_FAIL_AT", "2")
    res = run(_plan(out, algorithms=("mssr",)))
    assert res.failed == ["mssr/seed0"]
    rec = load_manifest(out)["mssr/seed0"]
    assert (rec.status, rec.step, rec.returncode) == ("failed", 2, 1)
    monkeypatch.delenv("FAKE_FAIL_AT")
    res = run(_plan(out, algorithms=("mssr",)))
    rec = load_manifest(out)["mssr/seed0"]
    assert (rec.status, rec.step, rec.attempts) == ("done", 3, 2) and not res.failed
    assert _launches(out, "mssr/seed0") == [0, 2]  # the second attempt started from the step-2 checkpoint
    steps = [json.loads(x)["step"] for x in (out / "runs/mssr/seed0/metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]


def test_new_arm_added_and_more_steps_extend(tmp_path, run):
    out = tmp_path / "cmp"
    run(_plan(out, algorithms=("mssr",)))
    # same base, another algorithm and more steps: mssr continues from step 3, rloo starts
    res = run(_plan(out, "steps=5", algorithms=("mssr", "rloo")), parallel=2)
    assert sorted(res.launched) == ["mssr/seed0", "rloo/seed0"]
    assert _launches(out, "mssr/seed0") == [0, 3]
    assert {r.id: r.step for r in load_manifest(out).values()} == {"mssr/seed0": 5, "rloo/seed0": 5}


def test_changed_config_is_refused(tmp_path, run):
    out = tmp_path / "cmp"
    run(_plan(out, algorithms=("mssr",)))
    with pytest.raises(CompareError, match=r"another shared base \(differs in: optim.lr\)"):
        run(_plan(out, "optim.lr=0.5", algorithms=("mssr",)))
    # a variant redefined with other overrides is caught at the run level
    from mssr.experiments.plan import parse_variants

    def variant_plan(body: str):
        return plan_compare(
            base=None, algorithms=("mssr",), seeds=(0,), overrides=OV, out=out, variants=parse_variants(body)
        )

    run(variant_plan("mssr_x:optim.lr=1e-3"))
    with pytest.raises(CompareError, match=r"run mssr_x/seed0 .* another config \(differs in: optim.lr\)"):
        run(variant_plan("mssr_x:optim.lr=2e-3"))


def test_more_steps_need_a_constant_schedule(tmp_path, run):
    out = tmp_path / "cmp"
    run(_plan(out, "optim.lr_schedule=cosine", algorithms=("mssr",)))
    with pytest.raises(CompareError, match="cannot extend steps with a cosine lr schedule"):
        run(_plan(out, "optim.lr_schedule=cosine", "steps=4", algorithms=("mssr",)))


def test_lock_refuses_a_second_compare(tmp_path, run):
    out = tmp_path / "cmp"
    out.mkdir()
    (out / LOCK).write_text(str(os.getppid()))  # a live process that is not us
    with pytest.raises(CompareError, match="in use by mssr compare"):
        run(_plan(out))
    (out / LOCK).write_text("999999999")  # a dead pid: the stale lock is taken over
    assert not run(_plan(out)).failed
    assert not (out / LOCK).exists()


def test_sigterm_checkpoints_and_stops_the_runs(tmp_path, monkeypatch, run):
    out = tmp_path / "cmp"
    monkeypatch.setenv("FAKE_SLEEP", "0.3")
    metrics = [out / "runs/mssr/seed0/metrics.jsonl", out / "runs/grpo/seed0/metrics.jsonl"]

    def terminate_once_both_train() -> None:  # only then is compare's SIGTERM handler surely installed
        t0 = time.monotonic()
        while not all(p.exists() for p in metrics) and time.monotonic() - t0 < 60:
            time.sleep(0.05)
        if all(p.exists() for p in metrics):
            os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_both_train)
    killer.start()
    res = run(_plan(out, "steps=100"), parallel=2)
    killer.join()
    assert res.interrupted
    recs = load_manifest(out)
    for r in recs.values():  # one SIGINT each: step finished, exit 130 = partial, not failed
        assert r.status == "partial" and 0 < r.step < 100 and r.returncode == 130 and r.pid is None
    monkeypatch.setenv("FAKE_SLEEP", "0")
    assert not run(_plan(out, "steps=100"), parallel=2).failed
    assert {r.status for r in load_manifest(out).values()} == {"done"}


def test_a_run_still_alive_from_a_killed_compare_is_refused(tmp_path, run):
    out = tmp_path / "cmp"
    run(_plan(out, algorithms=("mssr",)))
    recs = load_manifest(out)
    recs["mssr/seed0"].status, recs["mssr/seed0"].pid = "running", os.getppid()
    save_manifest(out, recs)
    with pytest.raises(CompareError, match=f"still being trained by process {os.getppid()}"):
        run(_plan(out, algorithms=("mssr",)))


def test_run_status(tmp_path):
    d = tmp_path / "run"
    assert run_status(d, 3) == ("pending", 0)
    (d / "checkpoints/step_000002").mkdir(parents=True)
    assert checkpoint_step(d) == 0  # incomplete checkpoint (no COMPLETE marker) does not count
    (d / "checkpoints/step_000002/COMPLETE").write_text("")
    (d / "checkpoints/step_000002/trainer_state.pt").write_text("x")
    assert run_status(d, 3) == ("partial", 2)
    (d / "metrics.jsonl").write_text("{}\n")
    assert run_status(d, 2) == ("done", 2)


def test_recorded_command_line_has_no_absolute_paths(tmp_path):
    out = tmp_path / "cmp"
    argv = ["mssr", "compare", "--out", str(out), f"--base={tmp_path / 'b.yaml'}"]
    argv += [f"data.train={tmp_path / 'd'}", "optim.lr=3e-4", "--seeds", "0-4"]
    argv += ["--base", "configs/cpu/mssr.yaml"]
    assert portable_argv(argv, out) == [
        "mssr", "compare", "--out", ".", "--base=../b.yaml", "data.train=../d",
        "optim.lr=3e-4", "--seeds", "0-4", "--base", "configs/cpu/mssr.yaml",
    ]  # fmt: skip

"""Faults around a run (docs/training.md "Faults"): every one ends with an exit code, one line, and no
completed step's data lost (metrics lines, checkpoints, weights).

Runs are in-process through the CLI (``mssr.cli.main.main``) except where a real signal to a process (group)
is the point; all of them are 2-3 tiny steps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mssr.trainer.checkpointer as checkpointer
import mssr.trainer.trainer as T
from mssr.cli.main import main
from mssr.io import LOCK_NAME, RunLock
from mssr.trainer.checkpoint import complete_checkpoints, latest_checkpoint

from .conftest import HERE
from .launch import config_args, torchrun_cmd, worker_env

_args = config_args  # the dotted overrides that rebuild a config


def _steps(run: Path) -> list[int]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return [r["step"] for r in rows if r["step"] > 0]


def _rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def _cli(capsys, args: list[str], *extra: str) -> tuple[int, str]:
    rc = main(["train", *args, *extra])
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("mssr train:")]
    return rc, (lines[-1] if lines else err)


def _one_line(err: str) -> None:
    assert "Traceback" not in err and "\n" not in err.strip()


# ------------------------------------------------------------------ 1 + 3: lock, signals to a process group
def test_second_run_into_a_locked_directory_and_sigint_to_the_process_group(make_config, tmp_path, capsys):
    """A run with 2 reward worker processes in its own session: a second run into its directory is refused
    with one line naming the holder; SIGINT to the whole group (what a terminal's Ctrl-C sends) spares the
    workers, checkpoints the last completed step and exits 130 with one line."""
    out = tmp_path / "run"
    cfg = make_config("steps=200", "reward.num_workers=2", "checkpoint.every=1", out=out)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mssr", "train", *_args(cfg)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 300
        while (
            time.time() < deadline and proc.poll() is None and not complete_checkpoints(out / "checkpoints")
        ):
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        rc, err = _cli(capsys, _args(make_config("steps=2", out=out)))
        assert rc == 2 and f"is in use by mssr train (pid {proc.pid} on " in err, err
        _one_line(err)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    steps = _steps(out)
    assert steps == list(range(1, len(steps) + 1))  # no interleaving from the refused run
    n = steps[-1]
    assert last.startswith(f"mssr train: interrupted by SIGINT after step {n}/200") and "resume" in last
    assert latest_checkpoint(out / "checkpoints").name == f"step_{n:06d}"
    assert not (out / LOCK_NAME).exists()  # released


HOLD_LOCK = r"""
import sys, time
from mssr.io import RunLock
lock = RunLock(sys.argv[1], what="mssr train").acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_the_lock_is_taken_before_the_model_and_data_are_built(make_config, tmp_path, capsys, monkeypatch):
    import mssr.trainer.setup as setup

    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    built = []
    real = setup.build_policy
    monkeypatch.setattr(setup, "build_policy", lambda cfg: built.append(1) or real(cfg))
    try:
        assert holder.stdout.readline().strip() == "held"
        rc, err = _cli(capsys, _args(make_config("steps=2", out=out)))
    finally:
        holder.kill()
        holder.wait()
    assert rc == 2 and f"is in use by mssr train (pid {holder.pid} on " in err, err
    assert built == []  # refused first thing (was: after ~10 s of building model and data)
    # once the holder is gone the directory is free again, and the run releases it when done
    assert _cli(capsys, _args(make_config("steps=1", out=out)))[0] == 0
    assert not (out / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    pid = int(dead.stdout)
    (d / LOCK_NAME).write_text(json.dumps({"what": "mssr train", "pid": pid, "host": os.uname().nodename}))
    with RunLock(d) as lock:
        assert lock.stale and lock.stale["pid"] == pid
        with pytest.raises(Exception, match="is in use by a run"):
            RunLock(d).acquire()
    assert not (d / LOCK_NAME).exists()


def test_an_eval_result_directory_in_use_is_refused(tiny_policy_dir, tiny_data_dir, tmp_path, capsys):
    out = tmp_path / "evals"
    argv = ["eval", "--model", f"a={tiny_policy_dir}", "--benchmarks", "builtin", "--quiet"]
    argv += ["--data", f"builtin={tiny_data_dir}", "--split", "val", "--out", str(out)]
    with RunLock(out / "a", what="mssr eval", path=out / ".a.lock"):
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{out / 'a'} is in use by mssr eval (pid {os.getpid()} on " in err
    _one_line(err)
    assert not (out / "a").exists()


# ------------------------------------------------------------------ 3: SIGTERM / SIGUSR1 in-process
@pytest.mark.parametrize("sig,rc", [(signal.SIGTERM, 143), (signal.SIGUSR1, 138)])
def test_termination_signal_checkpoints_and_exits_nonzero(
    make_config, tmp_path, capsys, monkeypatch, sig, rc
):
    out = tmp_path / "run"
    real = T.RLTrainer.train_step

    def step_then_signal(self, step):
        metrics = real(self, step)
        if step == 1:
            os.kill(os.getpid(), sig)  # arrives mid-run, as from Slurm / Kubernetes / docker stop
        return metrics

    monkeypatch.setattr(T.RLTrainer, "train_step", step_then_signal)
    from mssr.trainer import distributed

    left: list[bool] = []
    real_shutdown = distributed.shutdown
    monkeypatch.setattr(distributed, "shutdown", lambda: (left.append(True), real_shutdown()))
    code, err = _cli(capsys, _args(make_config("steps=3", out=out)))
    assert code == rc and left == [True]  # the process group is left as after a finished run
    _one_line(err)
    assert f"interrupted by {signal.Signals(sig).name} after step 1/3" in err
    assert _steps(out) == [1]
    assert latest_checkpoint(out / "checkpoints").name == "step_000001"
    assert signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler)  # handlers restored


def test_a_signal_to_one_rank_stops_every_rank_after_the_same_step(make_config, tmp_path):
    """torchrun, 2 gloo processes: rank 1 alone gets SIGTERM during step 1; the stop flag is all-reduced at
    the step boundary, so both ranks write step 1's checkpoint together (no hang) and exit 143."""
    out = tmp_path / "ddp"
    cfg = make_config(
        "steps=3",
        "algorithm.tracker.init=none",
        "rollout.gen_batch_size=4",
        f"reward.spec={HERE / 'plugin_rewards.py'}:sigterm_on_rank1",
        out=out,
    )
    cmd = torchrun_cmd(_args(cfg))
    env = worker_env(MSSR_TEST_SIGNAL_FLAG=str(tmp_path / "signalled"))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and (tmp_path / "signalled").exists()
    assert "mssr train: interrupted by SIGTERM after step 1/3" in proc.stderr, proc.stderr[-3000:]
    assert "exitcode  : 143" in proc.stderr  # torchrun reports the ranks' exit codes (and itself exits 1)
    assert "checkpoint None" not in proc.stderr  # rank 1 (no run.log) says nothing of its own
    assert proc.stderr.count("interrupted by SIGTERM") == 1, proc.stderr[-3000:]
    assert _steps(out) == [1]
    assert [p.name for p in complete_checkpoints(out / "checkpoints")] == ["step_000001"]
    assert not (out / LOCK_NAME).exists()


# ------------------------------------------------------------------ 2: runs do not mix
def test_resume_never_and_changed_config_are_refused_resume_says_so(make_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert _cli(capsys, _args(make_config("steps=2", out=out)))[0] == 0
    before = (out / "metrics.jsonl").read_text()

    code, err = _cli(capsys, _args(make_config("steps=3", "checkpoint.resume=never", out=out)))
    assert code == 2 and "already holds a run (metrics.jsonl, checkpoints up to step_000002)" in err
    _one_line(err)
    code, err = _cli(
        capsys,
        _args(make_config("steps=3", "algorithm.name=grpo", "algorithm.rollouts_per_prompt=4", out=out)),
    )
    assert code == 2 and "another config (algorithm.name: 'mssr' -> 'grpo'" in err
    assert "checkpoint.resume=force" in err
    _one_line(err)
    assert (out / "metrics.jsonl").read_text() == before  # nothing appended, nothing overwritten
    assert "name: mssr" in (out / "config.yaml").read_text()

    code = main(["train", *_args(make_config("steps=3", out=out))])
    err = capsys.readouterr().err
    assert code == 0 and "resumed from step 2 (checkpoint " in err
    assert _steps(out) == [1, 2, 3]
    assert "resumed from step 2" in (out / "run.log").read_text()


# ------------------------------------------------------------------ 4: reward failures
def test_reward_that_always_fails_stops_the_run_with_its_traceback_logged(make_config, tmp_path, capsys):
    out = tmp_path / "run"
    cfg = make_config(
        f"reward.spec={HERE / 'plugin_rewards.py'}:always_raises",
        "steps=5",
        "reward.max_excluded_steps=2",
        out=out,
    )
    code, err = _cli(capsys, _args(cfg))
    assert (
        code == 2 and "rewards failed: more than 0.5 of the samples had no usable reward for 2 steps" in err
    )
    _one_line(err)
    rows = _rows(out)
    assert rows[0]["step"] == 0 and rows[0]["init/reward_errors"] == 24  # the tracker's initialisation
    assert _steps(out) == [1, 2]
    assert latest_checkpoint(out / "checkpoints").name == "step_000002"
    log = (out / "run.log").read_text()
    assert "Traceback" in log and "ValueError: the reward's parser is broken" in log


# ------------------------------------------------------------------ 5: config validation
@pytest.mark.parametrize(
    "override,field",
    [
        ("algorithm.shaping.alpha=nan", "algorithm.shaping.alpha"),
        ("optim.lr=inf", "optim.lr"),
        ("optim.lr=nan", "optim.lr"),
        ("algorithm.shaping.cap=inf", "algorithm.shaping.cap"),
        ("algorithm.loss.clip_low=-0.1", "algorithm.loss.clip_low"),
        ("val.every=-1", "val.every"),
        ("checkpoint.every=-5", "checkpoint.every"),
        ("checkpoint.keep_last=0", "checkpoint.keep_last"),
        ("rollout.gen_batch_size=0", "rollout.gen_batch_size"),
        ("rollout.top_p=2", "rollout.top_p"),
        ("rollout.max_new_tokens=0", "rollout.max_new_tokens"),
        ("reward.timeout_s=0", "reward.timeout_s"),
        ("model.dtype=int8", "model.dtype"),
        ("device=tpu", "device"),
        ("model.preset=huge", "model.preset"),
        ("reward.spec=nosuch", "reward.spec"),
        ("reward.spec=nosuch_pkg.mod:f", "reward.spec"),
        ("checkpoint.resume=/no/such/checkpoint", "checkpoint.resume"),
    ],
)
def test_bad_config_is_one_line_naming_the_field(capsys, tmp_path, override, field):
    code, err = _cli(capsys, [f"output_dir={tmp_path / 'r'}", override])
    assert code == 2 and err.startswith(f"mssr train: config error: {field}"), err
    _one_line(err)
    assert not (tmp_path / "r").exists()


def test_yaml_that_includes_itself(capsys, tmp_path):
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    assert main(["train", "--config", str(tmp_path / "a.yaml")]) == 2
    err = capsys.readouterr().err
    assert "include cycle" in err and "Traceback" not in err


# ------------------------------------------------------------------ 6: user mistakes are one line, rc 2
def test_user_mistakes_are_one_line_and_debug_shows_the_traceback(make_config, tmp_path, capsys, monkeypatch):
    as_file = tmp_path / "file"
    as_file.write_text("x")
    code, err = _cli(capsys, _args(make_config(out=as_file)))
    assert code == 2 and f"output_dir {as_file} is a file" in err
    _one_line(err)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "question": "q", "answer": "1"}\n{not json\n')
    code, err = _cli(capsys, _args(make_config(f"data.train={bad}", out=tmp_path / "b")))
    assert code == 2 and str(bad) in err and "line 2" in err
    _one_line(err)

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, err = _cli(capsys, _args(make_config(f"data.train={empty}", out=tmp_path / "e")))
    assert code == 2 and "training set is empty" in err and str(empty) in err
    _one_line(err)

    # a corrupt and a missing image: one line naming the image file
    import shutil

    for case in ("corrupt", "missing"):
        data = tmp_path / f"data-{case}"
        shutil.copytree(make_config().data.train, data)
        first = json.loads((data / "train.jsonl").read_text().splitlines()[0])
        image = data / first["images"][0]
        if case == "corrupt":
            image.write_bytes(b"not a png at all")
        else:
            image.unlink()
        code, err = _cli(capsys, _args(make_config(f"data.train={data}", out=tmp_path / f"img-{case}")))
        assert code == 2 and image.name in err, err
        _one_line(err)

    monkeypatch.setenv("MSSR_DEBUG", "1")
    with pytest.raises(Exception, match="is a file"):
        main(["train", *_args(make_config(out=as_file))])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_output_dir(make_config, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, err = _cli(capsys, _args(make_config(out=ro / "run")))
    finally:
        ro.chmod(0o700)
    assert code == 2 and "cannot create output_dir" in err
    _one_line(err)


# ------------------------------------------------------------------ 7: checkpoint writes
def test_full_disk_at_a_checkpoint_is_one_line_and_leaves_no_temporary(
    make_config, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "run"
    stale = out / "checkpoints" / ".tmp-step_000009-999999"  # a dead run's torn write
    stale.mkdir(parents=True)
    real = checkpointer.save_state

    def full_disk(path, state):
        if "step" in state and state["step"] == 2:
            raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos; basic_ios::clear")
        real(path, state)

    monkeypatch.setattr(checkpointer, "save_state", full_disk)
    code, err = _cli(capsys, _args(make_config("steps=3", "checkpoint.every=1", out=out)))
    assert code == 2 and "could not write the checkpoint of step 2" in err
    assert "(writing trainer_state.pt)" in err  # the file and the step
    assert "the latest complete checkpoint is step_000001" in err
    _one_line(err)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_000001"]  # no .tmp-* left
    assert _steps(out) == [1, 2]
    assert not (out / LOCK_NAME).exists()


def test_too_little_free_space_is_refused_at_start(make_config, tmp_path, capsys, monkeypatch):
    import shutil

    import mssr.trainer.rundir as rundir

    monkeypatch.setattr(rundir.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 9, 1))
    code, err = _cli(capsys, _args(make_config(out=tmp_path / "run")))
    assert code == 2 and "only 0 MB free in" in err and "a checkpoint of this run needs about" in err
    _one_line(err)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


# ------------------------------------------------------------------ 8: what is logged
def test_actor_lr_is_the_lr_the_step_used(make_config, tmp_path):
    trainer = T.RLTrainer(make_config("steps=2", "optim.warmup_steps=2", out=tmp_path / "w"))
    trainer.train()
    assert [r["actor/lr"] for r in _rows(tmp_path / "w") if r["step"] > 0] == [5e-4, 1e-3]


def test_resumed_summary_equals_a_straight_one(make_config, tmp_path):
    straight = T.RLTrainer(make_config("steps=3", out=tmp_path / "a")).train()
    T.RLTrainer(make_config("steps=2", out=tmp_path / "b")).train()  # validates at its own end (step 2)
    resumed = T.RLTrainer(make_config("steps=3", out=tmp_path / "b")).train()
    keys = ("steps", "val_accuracy_start", "val_accuracy_final", "val_accuracy_best", "rollouts")
    assert {k: straight[k] for k in keys} == {k: resumed[k] for k in keys}
    assert resumed["resumed_from"].endswith("step_000002")
    assert _rows(tmp_path / "a")[-1]["collapse/val"] == _rows(tmp_path / "b")[-1]["collapse/val"]

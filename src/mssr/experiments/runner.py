"""Running a comparison: one ``python -m mssr train`` subprocess per run, N at a time, resumable.

Layout of a compare directory::

    compare.json        the shared base (YAML + shared overrides), every invocation's command line and time
    manifest.json       one entry per run: arm, algorithm, variant, seed, directory, status, step, attempts
    runs/<arm>/seed<k>/ the trainer's run directory + run.yaml (the exact config) + train.log (its output)
    report.md, *.png    written by :mod:`mssr.experiments.report`

A run is *done* when its latest complete checkpoint is at the configured step count (the trainer always
checkpoints its last step). Starting the comparison again skips done runs without launching anything, and
relaunches the others, which resume from their last checkpoint (``checkpoint.resume=auto``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mssr.config import canonical, dump_yaml, read_yaml, resolved_mapping, to_dict
from mssr.experiments.plan import CompareError, ComparePlan, RunSpec, config_diff
from mssr.io import pid_alive, read_json, write_json_atomic
from mssr.trainer.rundir import CHECKPOINTS, METRICS

MANIFEST = "manifest.json"
COMPARE_JSON = "compare.json"
LOCK = ".compare.lock"
RUN_YAML = "run.yaml"
RUN_LOG = "train.log"

# fields that may differ when a comparison is started again from another place or with more steps
_RELOCATABLE = {"output_dir"}


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def checkpoint_step(run_dir: Path) -> int:
    """The step of the run's latest complete checkpoint (0 when none)."""
    from mssr.trainer.checkpoint import STEP_DIR, latest_checkpoint

    path = latest_checkpoint(run_dir / CHECKPOINTS)
    if path is None:
        return 0
    m = STEP_DIR.match(path.name)
    return int(m.group(1)) if m else 0


def run_status(run_dir: Path, steps: int) -> tuple[str, int]:
    """``("done" | "partial" | "pending", checkpoint step)``."""
    step = checkpoint_step(run_dir)
    if step >= steps and (run_dir / METRICS).is_file():
        return "done", step
    return ("partial" if step > 0 else "pending"), step


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": cpu_count(),
    }
    with contextlib.suppress(Exception):
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    with contextlib.suppress(Exception):
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


@dataclass
class CompareLock:
    """A pid file: one ``mssr compare`` per directory at a time (a stale lock of a dead process is taken)."""

    path: Path

    def __enter__(self) -> CompareLock:
        if self.path.exists():
            try:
                pid = int(self.path.read_text().strip() or 0)
            except ValueError:
                pid = 0
            if pid and pid != os.getpid() and pid_alive(pid):
                raise CompareError(
                    f"{self.path.parent} is in use by mssr compare (pid {pid}); wait for it or stop it first"
                )
        self.path.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# ------------------------------------------------------------------------------------------- the directory
def portable_argv(argv: Sequence[str], out: Path) -> list[str]:
    """The command line as recorded in ``compare.json``: absolute paths (``/x``, ``--opt=/x``, ``key=/x``)
    become relative to the output root, so a committed compare directory names no machine's paths."""
    root = Path(out).resolve()

    def rel(value: str) -> str:
        return os.path.relpath(value, root) if os.path.isabs(value) else value

    out_args = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        out_args.append(f"{key}={rel(value)}" if eq and not os.path.isabs(arg) else rel(arg))
    return out_args


def init_compare_dir(plan: ComparePlan, argv: Sequence[str]) -> dict[str, Any]:
    """Create or check ``compare.json``: a directory holds one shared base; more steps may be added later."""
    plan.out.mkdir(parents=True, exist_ok=True)
    path = plan.out / COMPARE_JSON
    shared = plan.shared_dict()
    if path.exists():
        meta = read_json(path, error=CompareError)
        from mssr.trainer.config import TrainConfig

        old = canonical(TrainConfig, meta["shared"], warn=False)  # recorded under old (aliased) names, maybe
        diff = [k for k in config_diff(old, canonical(TrainConfig, shared, warn=False)) if k != "steps"]
        if diff:
            raise CompareError(
                f"{plan.out} holds a comparison with another shared base (differs in: {', '.join(diff)}); "
                "use another --out, or the same base and shared overrides"
            )
        if meta.get("reference") != plan.reference:
            meta["reference"] = plan.reference
    else:
        meta = {"created": _now(), "reference": plan.reference, "invocations": []}
    meta.update(base=plan.base, shared_overrides=list(plan.shared_overrides), shared=shared)
    meta["invocations"].append(
        {"argv": portable_argv(argv, plan.out), "started": _now(), "machine": machine_info()}
    )
    write_json_atomic(path, meta)
    return meta


def _check_run_config(run: RunSpec, cfg: Any, run_dir: Path) -> None:
    """A run that exists must have been started with the same config (more ``steps`` are allowed)."""
    path = run_dir / RUN_YAML
    if not path.exists():
        return
    old = resolved_mapping(type(cfg), read_yaml(path))  # a run.yaml may use old names and preset nulls
    new = to_dict(cfg)
    diff = [k for k in config_diff(old, new) if k not in _RELOCATABLE]
    if diff == ["steps"] and int(new["steps"]) > int(old.get("steps", 0)):
        if new["optim"]["lr_schedule"] != "constant":
            raise CompareError(
                f"run {run.id}: cannot extend steps with a {new['optim']['lr_schedule']} lr schedule"
            )
        return
    if diff:
        raise CompareError(
            f"run {run.id} in {run_dir} was started with another config (differs in: {', '.join(diff)}); "
            "use another --out, or delete that run directory to start it again"
        )


@dataclass
class RunRecord:
    """One manifest entry."""

    id: str
    arm: str
    algorithm: str
    variant: str | None
    seed: int
    dir: str
    steps: int
    status: str = "pending"  # pending | running | partial | done | failed
    step: int = 0
    attempts: int = 0
    returncode: int | None = None
    wall_s: float = 0.0  # subprocess wall time over all attempts
    started: str | None = None
    finished: str | None = None
    pid: int | None = None  # of the training subprocess while it runs


def load_manifest(out: Path) -> dict[str, RunRecord]:
    path = out / MANIFEST
    if not path.exists():
        return {}
    data = read_json(path, error=CompareError)
    try:
        return {r["id"]: RunRecord(**r) for r in data["runs"]}
    except (KeyError, TypeError) as e:
        raise CompareError(f"{path}: malformed manifest ({e})") from None


def save_manifest(out: Path, records: dict[str, RunRecord]) -> None:
    write_json_atomic(out / MANIFEST, {"updated": _now(), "runs": [vars(r) for r in records.values()]})


# ------------------------------------------------------------------------------------------- shared assets
def prepare_shared_assets(cfgs: Sequence[Any], log: Callable[[str], None] = print) -> None:
    """Build the cached SFT base and built-in dataset once, before parallel runs would race to build them."""
    from mssr.trainer.setup import cache_dir, sft_config

    seen: set[str] = set()
    for cfg in cfgs:
        if cfg.model.path is None and cfg.model.warm_start:
            sft = sft_config(cfg)
            sft.progress = False
            key = str(sft.output_dir())
            if key not in seen:
                seen.add(key)
                _wait_for_other_builder(sft.output_dir(), log)
                from mssr.sft import ensure_base_policy

                t0 = time.perf_counter()
                path = ensure_base_policy(sft)
                log(f"SFT base: {path} ({time.perf_counter() - t0:.0f} s)")
        if cfg.data.train is None:
            from mssr.data.builtin import ensure_dataset

            data_cfg = {**sft_config(cfg).data, **cfg.data.builtin}
            key = json.dumps(data_cfg, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                ensure_dataset(cache_dir(cfg), **data_cfg)


def _wait_for_other_builder(final: Path, log: Callable[[str], None], timeout_s: float = 3 * 3600) -> None:
    """If another live process is training the same SFT base (``.tmp-<name>-<pid>``), wait for it."""
    from mssr.sft.cache import DONE_FILE

    t0 = time.monotonic()
    announced = False
    while not (final / DONE_FILE).is_file() and time.monotonic() - t0 < timeout_s:
        pids = []
        for tmp in final.parent.glob(f".tmp-{final.name}-*"):
            with contextlib.suppress(ValueError):
                pid = int(tmp.name.rsplit("-", 1)[1])
                if pid != os.getpid() and pid_alive(pid):
                    pids.append(pid)
        if not pids:
            return
        if not announced:
            log(f"waiting for process {pids[0]}, which is building the SFT base {final.name}")
            announced = True
        time.sleep(10)


# ------------------------------------------------------------------------------------------- running
def train_command(run_yaml: Path) -> list[str]:
    return [sys.executable, "-m", "mssr", "train", "--config", str(run_yaml)]


@dataclass
class CompareResult:
    out: Path
    records: dict[str, RunRecord]
    launched: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed(self) -> list[str]:
        return [r.id for r in self.records.values() if r.status == "failed"]


def run_compare(
    plan: ComparePlan,
    *,
    parallel: int = 1,
    threads: int | None = None,
    prepare: bool = True,
    argv: Sequence[str] = (),
    command: Callable[[Path], list[str]] = train_command,
    poll_s: float = 1.0,
    status_every_s: float = 120.0,
    log: Callable[[str], None] = print,
) -> CompareResult:
    """Run every planned run that is not done yet, ``parallel`` at a time; returns the final manifest.

    Each subprocess gets ``threads`` intra-op threads (default: CPU cores ÷ ``parallel``, at least 1) through
    ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``. A failed run is recorded and the others go on; starting the
    comparison again retries it from its last checkpoint.
    """
    if parallel < 1:
        raise CompareError("--parallel must be >= 1")
    threads = threads or max(1, cpu_count() // parallel)
    cfgs = {r.id: plan.run_config(r) for r in plan.runs}
    with CompareLock(_lock_path(plan.out)):
        init_compare_dir(plan, argv)
        records = load_manifest(plan.out)
        todo: list[RunSpec] = []
        for run in plan.runs:
            cfg = cfgs[run.id]
            run_dir = plan.out / run.rel_dir
            _check_run_config(run, cfg, run_dir)
            status, step = run_status(run_dir, cfg.steps)
            rec = records.get(run.id) or RunRecord(
                run.id, run.arm, run.algorithm, run.variant, run.seed, run.rel_dir, cfg.steps
            )
            if rec.status == "running" and rec.pid and pid_alive(rec.pid):
                raise CompareError(
                    f"run {run.id} is still being trained by process {rec.pid} (left by an earlier mssr "
                    "compare that was killed); stop it or wait for it first"
                )
            rec.steps, rec.step, rec.pid = cfg.steps, step, None
            rec.status = status if not (rec.status == "failed" and status != "done") else "failed"
            records[run.id] = rec
            if status != "done":
                todo.append(run)
        save_manifest(plan.out, records)
        done = sum(r.status == "done" for r in records.values() if r.id in cfgs)
        log(
            f"mssr compare: {len(plan.runs)} runs in {plan.out} ({done} done, {len(todo)} to run; "
            f"{parallel} at a time, {threads} thread(s) each)"
        )
        result = CompareResult(plan.out, records)
        if not todo:
            return result
        if prepare:
            prepare_shared_assets([cfgs[r.id] for r in todo], log)
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false",
        }
        running: dict[str, tuple[subprocess.Popen, float, Any]] = {}
        queue = list(todo)
        last_status = time.monotonic()
        prev_term = _raise_on_sigterm()
        try:
            while queue or running:
                while queue and len(running) < parallel:
                    run = queue.pop(0)
                    running[run.id] = _launch(plan, run, cfgs[run.id], records[run.id], env, command)
                    result.launched.append(run.id)
                    save_manifest(plan.out, records)
                    log(f"  start  {run.id} (from step {records[run.id].step})")
                for rid, (proc, t0, fh) in list(running.items()):
                    rc = proc.poll()
                    if rc is None:
                        continue
                    fh.close()
                    del running[rid]
                    _finish(plan, records[rid], rc, time.monotonic() - t0)
                    save_manifest(plan.out, records)
                    r = records[rid]
                    n_done = sum(x.status == "done" for x in records.values() if x.id in cfgs)
                    log(
                        f"  {r.status:<6} {rid}: step {r.step}/{r.steps}, rc {rc}, "
                        f"{time.monotonic() - t0:.0f} s  [{n_done}/{len(cfgs)} done]"
                        + (f" — see {plan.out / r.dir / RUN_LOG}" if r.status == "failed" else "")
                    )
                if running and time.monotonic() - last_status > status_every_s:
                    last_status = time.monotonic()
                    log(
                        "  running: "
                        + ", ".join(f"{rid} @ {_live_step(plan.out / records[rid].dir)}" for rid in running)
                    )
                time.sleep(poll_s if running else 0)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the children run in their own sessions
            result.interrupted = True
            log("interrupted: asking the running trainings to checkpoint and stop …")
            for _, (proc, _, _) in running.items():
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
            for rid, (proc, t0, fh) in running.items():
                try:
                    rc = proc.wait(timeout=600)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    rc = proc.wait()
                fh.close()
                _finish(plan, records[rid], rc, time.monotonic() - t0)
            save_manifest(plan.out, records)
        finally:
            if prev_term is not None:
                signal.signal(signal.SIGTERM, prev_term)
        meta = read_json(plan.out / COMPARE_JSON, error=CompareError)
        meta["invocations"][-1]["finished"] = _now()
        write_json_atomic(plan.out / COMPARE_JSON, meta)
        return result


def _raise_on_sigterm() -> Any:
    """Treat SIGTERM like Ctrl-C (checkpoint and stop the children); returns the previous handler."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(*_: object) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _lock_path(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return out / LOCK


def _launch(
    plan: ComparePlan,
    run: RunSpec,
    cfg: Any,
    rec: RunRecord,
    env: dict[str, str],
    command: Callable[[Path], list[str]],
) -> tuple[subprocess.Popen, float, Any]:
    run_dir = plan.out / run.rel_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    run_yaml = run_dir / RUN_YAML
    run_yaml.write_text(dump_yaml(cfg), encoding="utf-8")
    fh = (run_dir / RUN_LOG).open("a", encoding="utf-8")
    fh.write(f"\n===== {_now()} attempt {rec.attempts + 1}: {' '.join(command(run_yaml))}\n")
    fh.flush()
    # a session of its own: a terminal Ctrl-C reaches only compare, which forwards exactly one SIGINT (the
    # trainer's first SIGINT checkpoints and stops; a second one would abort the checkpoint)
    proc = subprocess.Popen(
        command(run_yaml), stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    rec.attempts += 1
    rec.status, rec.started, rec.finished, rec.returncode = "running", _now(), None, None
    rec.pid = proc.pid
    return proc, time.monotonic(), fh


def _finish(plan: ComparePlan, rec: RunRecord, rc: int, wall: float) -> None:
    status, step = run_status(plan.out / rec.dir, rec.steps)
    rec.step, rec.returncode, rec.finished, rec.pid = step, rc, _now(), None
    rec.wall_s = round(rec.wall_s + wall, 1)
    # a training stopped by a signal exits 130 / 143 / 138 after checkpointing: unfinished, not failed
    interrupted = rc - 128 in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    rec.status = "done" if status == "done" else ("failed" if rc != 0 and not interrupted else "partial")


def _live_step(run_dir: Path) -> str:
    path = run_dir / METRICS
    if not path.exists():
        return "start"
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4096))
            last = fh.read().decode("utf-8", "replace").strip().splitlines()[-1]
        return f"step {json.loads(last).get('step')}"
    except (OSError, IndexError, json.JSONDecodeError):
        return "?"

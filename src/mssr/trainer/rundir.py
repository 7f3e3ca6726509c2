"""A run directory belongs to one run: its checks at start, the config a resume may continue, and the errors a
user fixes (docs/training.md "Faults").

* :func:`open_run_dir` (rank 0, before anything is read or written): ``output_dir`` is a directory that can be
  created and written, the exclusive :class:`~mssr.io.RunLock` is taken, ``checkpoints/`` is writable and has
  room for a checkpoint, and temporary checkpoint folders of dead runs are removed.
* :func:`resume_config_diff`: the settings that change what a run means (algorithm, model, data, seeds, batch
  shape) of a checkpoint's ``config.yaml`` against the new config; a resume with differences is refused unless
  ``checkpoint.resume=force``. Operational settings may change (:data:`MAY_CHANGE`).
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

import yaml

from mssr.config import canonical, dump_yaml, resolved_mapping
from mssr.io import DirectoryLocked, RunLock
from mssr.trainer.checkpoint import complete_checkpoints, remove_temporaries

# dotted keys (or prefixes ending in ".") a resumed run may change: how long, where, on what, how it is logged,
# validated, checkpointed and parallelised, and how rewards are run — not what is trained or on which data
# The run directory's layout: written by the trainer, read by mssr eval, mssr compare and the report.
CONFIG = "config.yaml"  # the run's config (also in each checkpoint)
METRICS = "metrics.jsonl"  # one row of metrics per step
CHECKPOINTS = "checkpoints"  # checkpoints/step_NNNNNN/ (mssr.trainer.checkpointer)
POLICY = "policy"  # a checkpoint's loadable policy (config.json, weights, processor)


def find_policy(path: Path) -> tuple[Path, Path | None] | None:
    """``(policy directory, training config or None)`` for ``path``: a policy directory itself (``config.json``),
    a checkpoint (its ``policy/``) or a run (its latest complete checkpoint); None when ``path`` is none of them.
    Raises :class:`RunError` for a run without a complete checkpoint."""

    def config(*candidates: Path) -> Path | None:
        return next((c for c in candidates if c.is_file()), None)

    if (path / "config.json").is_file():
        return path, config(path.parent / CONFIG if path.name == POLICY else path / CONFIG)
    if (path / POLICY / "config.json").is_file():
        return path / POLICY, config(path / CONFIG)
    if (path / CHECKPOINTS).is_dir():
        from mssr.trainer.checkpoint import latest_checkpoint

        ckpt = latest_checkpoint(path / CHECKPOINTS)
        if ckpt is None:
            raise RunError(f"the run has no complete checkpoint under {path / CHECKPOINTS}")
        return ckpt / POLICY, config(ckpt / CONFIG, path / CONFIG)
    return None


MAY_CHANGE = (
    "steps",
    "output_dir",
    "device",
    "threads",
    "logging.",
    "checkpoint.",
    "val.",
    "parallel.",
    "reward.num_workers",
    "reward.timeout_s",
    "reward.max_excluded_frac",
    "reward.max_excluded_steps",
    "data.cache_dir",
    "data.on_error",  # a run that loaded under "raise" had no bad rows, so "skip" reads the same records
    "model.gradient_checkpointing",
    "optim.micro_batch_size",
    "rollout.share_prompts",
)

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class RunError(RuntimeError):
    """A problem with the run's directory, disk, data or reward that the user fixes; ``mssr train`` prints it
    as one line and exits 2."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT / SIGTERM / SIGUSR1 stopped the run after a checkpoint of its last completed step."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None, steps: int) -> None:
        self.signum, self.step, self.checkpoint, self.steps = signum, step, checkpoint, steps
        self.exit_code = EXIT_CODES.get(signum, 128 + signum)
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name} after step {step}/{steps}; checkpoint {checkpoint}; run the same command "
            "again to resume"
        )


def _mb(n: float) -> str:
    return f"{n / 2**20:.0f} MB"


def lock_run_dir(run_dir: Path) -> RunLock:
    """Create and lock ``run_dir`` (the first thing a run does, before its model and data are built, so that a
    second run into the same directory is refused at once). Raises :class:`RunError`."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"output_dir {run_dir} is a file, not a directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create output_dir {run_dir}: {exc.strerror or exc}") from None
    try:
        return RunLock(run_dir, what="mssr train").acquire()
    except DirectoryLocked as exc:
        raise RunError(str(exc)) from None
    except OSError as exc:
        raise RunError(f"output_dir {run_dir} is not writable: {exc.strerror or exc}") from None


def open_run_dir(
    run_dir: Path, ckpt_root: Path, *, checkpoint_bytes: int, lock: RunLock | None = None
) -> RunLock:
    """Check and lock ``run_dir`` (see the module docstring; ``lock``: already taken by
    :func:`lock_run_dir`); returns the held lock. Raises :class:`RunError` (releasing a lock it took)."""
    if lock is None:
        lock = lock_run_dir(run_dir)
    try:
        _check_writable(ckpt_root)
        free = shutil.disk_usage(ckpt_root).free
        if free < checkpoint_bytes:
            raise RunError(
                f"only {_mb(free)} free in {ckpt_root}; a checkpoint of this run needs about "
                f"{_mb(checkpoint_bytes)}: free some space or choose another output_dir"
            )
        remove_temporaries(ckpt_root)  # we hold the lock: any temporary folder is a dead run's
    except BaseException:
        lock.release()
        raise
    return lock


def _check_writable(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise RunError(f"{path} is a file, not a directory")
    probe = path / f".write-test-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"{path} is not writable: {exc.strerror or exc}") from None


def run_has_data(run_dir: Path) -> str | None:
    """What in ``run_dir`` belongs to an earlier run (metrics or checkpoints), or None."""
    found = []
    metrics = run_dir / METRICS
    if metrics.is_file() and metrics.stat().st_size:
        found.append(METRICS)
    done = complete_checkpoints(run_dir / CHECKPOINTS)
    if done:
        found.append(f"checkpoints up to {done[-1].name}")
    return ", ".join(found) or None


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict) and k != "builtin":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def resume_config_diff(saved_yaml: Path, cfg: Any) -> list[str]:
    """``key: old -> new`` for each setting that changes the run's meaning (empty: same run). A key the saved
    config lacks (written by an older version) is not compared; one it holds under an old (aliased) name is, and
    a null that stood for the algorithm's value is compared as that value."""
    if not saved_yaml.is_file():
        return []
    raw = yaml.safe_load(saved_yaml.read_text(encoding="utf-8"))
    given = _flat(canonical(type(cfg), raw, warn=False))
    saved = _flat(resolved_mapping(type(cfg), raw))
    now = _flat(yaml.safe_load(dump_yaml(cfg)))
    return [
        f"{k}: {saved[k]!r} -> {v!r}"
        for k, v in now.items()
        if k in given
        and saved[k] != v
        and not any(k == m or (m.endswith(".") and k.startswith(m)) for m in MAY_CHANGE)
    ]

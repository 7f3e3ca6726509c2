"""A run's session: the run directory's lock (taken before anything is built), its log file ``run.log``, and the
stop signals (finish the step, checkpoint, stop), agreed by every rank at a step boundary."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from mssr.trainer import distributed as dist
from mssr.trainer.rundir import RunError, lock_run_dir, open_run_dir

# the run's log file only (RUN_DIR/run.log): tracebacks of reward failures and the like
runlog = logging.getLogger("mssr.runlog")
runlog.propagate = False
runlog.addHandler(logging.NullHandler())  # ranks without run.log stay silent (no last-resort stderr lines)
RUN_LOG = "run.log"
# signals that finish the current step, write a checkpoint and stop (a second SIGINT stops at once)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


class RunSession:
    """The run directory's life on every rank: :meth:`lock` it, :meth:`open` its log, :meth:`close` both; a
    :meth:`stop_signals` block during which SIGINT / SIGTERM / SIGUSR1 ask the run to stop."""

    def __init__(self, run_dir: Path, device: torch.device) -> None:
        self.run_dir = run_dir
        self.device = device
        self.stop_signal = 0
        self._lock: Any = None
        self._handler: logging.Handler | None = None

    def lock(self) -> None:
        """Rank 0 locks the run directory (before the model and data are built); every rank raises its error."""
        error = None
        if dist.is_main():
            try:
                self._lock = lock_run_dir(self.run_dir)
            except RunError as exc:
                error = str(exc)
        _raise_everywhere(error)

    def open(self, ckpt_root: Path, checkpoint_bytes: int) -> None:
        """Rank 0 checks the (locked) run directory and opens run.log; every rank raises rank 0's error, if any."""
        error = None
        if dist.is_main():
            try:
                self._lock = open_run_dir(
                    self.run_dir, ckpt_root, checkpoint_bytes=checkpoint_bytes, lock=self._lock
                )
            except RunError as exc:
                self._lock = None  # open_run_dir released it
                error = str(exc)
            else:
                h = logging.FileHandler(self.run_dir / RUN_LOG, encoding="utf-8")
                h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
                runlog.addHandler(h)
                runlog.setLevel(logging.INFO)
                self._handler = h
                if self._lock.stale:
                    runlog.info("took over the stale lock of %s", self._lock.describe(self._lock.stale))
        _raise_everywhere(error)

    def close(self) -> None:
        """Close run.log and release the lock (idempotent)."""
        h, self._handler = self._handler, None
        if h is not None:
            runlog.removeHandler(h)
            h.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @contextlib.contextmanager
    def stop_signals(self) -> Iterator[None]:
        """Within the block (in the main thread), the stop signals set :attr:`stop_signal` instead of killing."""
        handlers: dict[int, Any] = {}
        try:
            if threading.current_thread() is threading.main_thread():
                handlers = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
            yield
        finally:
            for sig, prev in handlers.items():
                signal.signal(sig, prev)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        """SIGINT / SIGTERM / SIGUSR1: finish the current step, checkpoint and stop (decided by all ranks at
        the step boundary). A second SIGINT stops at once, without a checkpoint of the step in progress."""
        if self.stop_signal and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.stop_signal:
            self.stop_signal = signum

    def stop_requested(self) -> int:
        """The signal (number) that stops the run, agreed by every rank, or 0: one all-reduce per step, so all
        ranks leave the loop after the same step and write the same checkpoint together."""
        if not dist.is_distributed():
            return self.stop_signal
        on = self.device if self.device.type == "cuda" else torch.device("cpu")
        return int(dist.all_reduce_max(torch.tensor([self.stop_signal], dtype=torch.int64, device=on))[0])


def say(msg: str) -> None:
    """A line for the user (stderr, rank 0) that also goes to the run's log file."""
    if dist.is_main():
        print(f"mssr train: {msg}", file=sys.stderr, flush=True)
        runlog.info(msg)


def _raise_everywhere(error: str | None) -> None:
    """Every rank raises rank 0's error (broadcast), if it had one."""
    error = dist.broadcast_object(error)
    if error:
        raise RunError(error)

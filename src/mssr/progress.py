"""The progress display every training loop shares (the RL trainer, the SFT warm start).

On a terminal: a rich bar with the step count, elapsed and remaining time, and the loop's own figures beside it.
When stderr is not a terminal (a log file under nohup, Slurm or CI, where the bar renders nothing): one plain
line per step, or at most one every ``every_s`` seconds, with the same figures, seconds per step and the ETA.
Each plain line also goes to ``sink`` (the RL trainer's ``run.log``), terminal or not. A no-op when disabled.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    """A rich bar on a terminal, plain progress lines otherwise (no-op when disabled).

    ``lines``: None = plain lines exactly when stderr is not a terminal; True/False forces them on/off.
    """

    def __init__(
        self,
        total: int,
        start: int = 0,
        *,
        enabled: bool = True,
        description: str = "train",
        lines: bool | None = None,
        every_s: float = 0.0,
        sink: Callable[[str], None] | None = None,
        stream: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bar = None
        self._enabled = enabled
        self.total, self.start, self.description = total, start, description
        self._stream = stream if stream is not None else sys.stderr
        self._lines = lines if lines is not None else not getattr(self._stream, "isatty", lambda: False)()
        self._every_s, self._sink, self._clock = every_s, sink, clock
        self._t0 = clock()
        self._last_line: float | None = None
        if not enabled or self._lines:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
        )
        self._task = self._bar.add_task(description, total=total, completed=start, info="")
        self._bar.start()

    def update(self, step: int, metrics: dict[str, Any], val_acc: float | None) -> None:
        """An RL step: reward, validation accuracy, entropy and the KL to the reference."""
        nan = float("nan")
        parts = [f"reward {metrics.get('critic/score/mean', nan):.3f}"]
        if val_acc is not None:
            parts.append(f"val {val_acc:.3f}")
        parts.append(f"entropy {metrics.get('actor/entropy', nan):.4f}")
        if "actor/kl_loss" in metrics:
            parts.append(f"kl {metrics['actor/kl_loss']:.4f}")
        self.show(step, " · ".join(parts))

    def line(self, step: int, info: str) -> str:
        """The plain progress line of ``step``: figures, seconds per step since the start, ETA."""
        done = step - self.start
        elapsed = self._clock() - self._t0
        per = elapsed / done if done > 0 else float("nan")
        eta = per * (self.total - step) if done > 0 else float("nan")
        timing = f"{per:.2f} s/step · ETA {_duration(eta)}" if done > 0 else "starting"
        return f"{self.description} step {step}/{self.total} · {info} · {timing}"

    def show(self, step: int, info: str) -> None:
        """Move to ``step`` with ``info`` beside the bar (any loop's own figures, e.g. the SFT loss)."""
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=step, info=info)
        now = self._clock()
        due = self._last_line is None or now - self._last_line >= self._every_s or step >= self.total
        if not due or (self._bar is not None and self._sink is None):
            return
        self._last_line = now
        text = self.line(step, info)
        if self._lines:
            print(text, file=self._stream, flush=True)
        if self._sink is not None:
            self._sink(text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

"""The progress display every training loop shares (the RL trainer, the SFT warm start): a rich bar with the
step count, elapsed and remaining time, and the loop's own figures beside it; a no-op when disabled."""

from __future__ import annotations

from typing import Any


class Progress:
    """A rich progress bar: step, times and a line of figures (no-op when disabled)."""

    def __init__(
        self, total: int, start: int = 0, *, enabled: bool = True, description: str = "train"
    ) -> None:
        self._bar = None
        if not enabled:
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
        """An RL step: reward, validation accuracy and entropy."""
        if self._bar is None:
            return
        parts = [f"reward {metrics.get('critic/score/mean', float('nan')):.3f}"]
        if val_acc is not None:
            parts.append(f"val {val_acc:.3f}")
        parts.append(f"entropy {metrics.get('actor/entropy', float('nan')):.4f}")
        self.show(step, " · ".join(parts))

    def show(self, step: int, info: str) -> None:
        """Move to ``step`` with ``info`` beside the bar (any loop's own figures, e.g. the SFT loss)."""
        if self._bar is not None:
            self._bar.update(self._task, completed=step, info=info)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

"""Where metrics go: JSONL (always), TensorBoard (default), wandb (optional), a rich progress bar, and a
PNG of the main curves at the end of a run."""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path
from typing import Any

from mssr.io import read_jsonl
from mssr.progress import Progress as Progress  # shared with the SFT loop; re-exported
from mssr.trainer.rundir import METRICS


class MetricsLogger:
    """Appends one JSON object per step to ``metrics.jsonl`` and mirrors scalars to TensorBoard / wandb."""

    def __init__(
        self,
        run_dir: Path,
        *,
        tensorboard: bool = True,
        wandb: bool = False,
        wandb_project: str = "mssr",
        config: dict | None = None,
        resume_step: int = 0,
    ) -> None:
        self.run_dir = run_dir
        self.path = run_dir / METRICS
        run_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and resume_step:  # resumed: keep the steps up to the checkpoint
            self._truncate_after(resume_step)
        elif self.path.exists():  # a fresh start (no checkpoint): a fresh file, not a second history
            self.path.write_text("", encoding="utf-8")
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge the events of steps after the checkpoint (of every step on a fresh start)
            self._tb = SummaryWriter(
                log_dir=str(run_dir / "tensorboard"), purge_step=resume_step + 1 if resume_step else 0
            )
        self._wandb = None
        if wandb:
            import wandb as _wandb  # optional dependency

            self._wandb = _wandb.init(
                project=wandb_project, dir=str(run_dir), config=config or {}, resume="allow"
            )

    def _truncate_after(self, step: int) -> None:
        """Drop lines of steps after the resumed checkpoint (they will be logged again)."""
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a kill
            if rec.get("step", 0) <= step:
                kept.append(line)
        self.path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        rec = {"step": step, **{k: _jsonable(v) for k, v in metrics.items()}}
        _append_whole_line(self.path, (json.dumps(rec) + "\n").encode("utf-8"))
        scalars = {k: v for k, v in rec.items() if isinstance(v, (int, float)) and k != "step"}
        if self._tb is not None:
            for k, v in scalars.items():
                if math.isfinite(v):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def _append_whole_line(path: Path, data: bytes) -> None:
    """Append ``data`` in one write; if it fails part-way (a full disk) cut the file back to where it was, so
    no torn line is left for the next line to be glued onto. The error is raised (the run stops in one line)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"short write to {path} ({written} of {len(data)} bytes)")
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


CURVES = (
    ("critic/score/mean", "train reward"),
    ("val/accuracy", "validation accuracy"),
    ("actor/entropy", "sampled-token entropy"),
    ("actor/kl_loss", "KL to reference (k3)"),
    ("critic/advantages/std", "advantage std"),
    ("response_length/mean", "response length"),
)


def plot_curves(metrics_path: Path, out_png: Path, *, title: str = "") -> Path:
    """A 2×3 grid of the main curves against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_jsonl(metrics_path, skip_invalid=True)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (key, label) in zip(axes.flat, CURVES, strict=True):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o" if len(pts) < 30 else None, lw=1.5)
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png

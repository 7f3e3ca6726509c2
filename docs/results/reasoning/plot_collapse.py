"""Draw the collapse regime map on the reasoning world from `mssr compare` directories.

    python docs/results/reasoning/plot_collapse.py OUT.png "CELL=DIR[:ARM[>LABEL]]" [...]

Each argument adds the runs of one arm (or, without ``:ARM``, every arm) of the compare directory ``DIR`` to the
column ``CELL`` (arguments with the same CELL share a column; ``>LABEL`` renames the arm in the legend). Per
column: validation accuracy (top) and the sampled-token entropy (bottom, log scale) against the training step;
line = mean over seeds, band = min–max over seeds, legend = arm (seeds). Collapse flags are the compare
report's (`mssr.algos.collapse.detect_collapse`); a run's flagged entropy collapse is marked ×.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mssr.experiments.curves import aggregate
from mssr.experiments.report import summarize


def parse(args: list[str]) -> dict[str, list[tuple[Path, str | None, str | None]]]:
    cells: dict[str, list[tuple[Path, str | None, str | None]]] = {}
    for a in args:
        cell, spec = a.split("=", 1)
        label = None
        if ">" in spec:
            spec, label = spec.split(">", 1)
        d, _, arm = spec.partition(":")
        cells.setdefault(cell, []).append((Path(d), arm or None, label))
    return cells


def main() -> None:
    out, cells = sys.argv[1], parse(sys.argv[2:])
    fig, axes = plt.subplots(2, len(cells), figsize=(3.6 * len(cells), 6.4), squeeze=False, sharey="row")
    colours: dict[str, tuple] = {}
    cmap = plt.get_cmap("tab10")
    for col, (cell, specs) in enumerate(cells.items()):
        top, bottom = axes[0][col], axes[1][col]
        for d, arm_name, label in specs:
            summary = summarize(d)
            for arm in summary.arms:
                if arm_name and arm.arm != arm_name:
                    continue
                name = label or arm.arm
                c = colours.setdefault(name, cmap(len(colours) % 10))
                runs = summary.curves[arm.arm]  # in the order of arm.runs
                for ax, series in ((top, "val"), (bottom, "entropy")):
                    band = aggregate(runs, series)
                    if not band.x:
                        continue
                    ax.plot(band.x, band.mean, color=c, lw=1.5, label=f"{name} ({arm.n})")
                    if max(band.n) > 1:
                        ax.fill_between(band.x, band.lo, band.hi, color=c, alpha=0.15, lw=0)
                for run, r in zip(runs, arm.runs, strict=True):
                    st = r.entropy_collapse_step
                    y = dict(run.series["entropy"]).get(st) if st is not None else None
                    if y is not None:
                        bottom.plot([st], [y], "x", color=c, ms=8, mew=2)
        top.set_title(cell, fontsize=10)
        top.set_ylim(-0.02, 0.5)
        bottom.set_yscale("log")
        bottom.set_xlabel("step")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
        top.legend(fontsize=7, loc="upper right")
    axes[0][0].set_ylabel("validation accuracy (sampled)")
    axes[1][0].set_ylabel("sampled-token entropy")
    fig.suptitle(
        "collapse regime map on the reasoning world (mean, min–max band over seeds; × entropy collapse)"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main()

"""Plot the dev-accuracy curves of SFT attempts on the reasoning world from their ``loss_log.jsonl`` files.

    python docs/results/reasoning/plot_sft.py OUT.png LABEL=PATH/loss_log.jsonl [LABEL=PATH ...]
    python docs/results/reasoning/plot_sft.py OUT.png LABEL=docs/results/reasoning/sft_attempts.jsonl#ATTEMPT ...

One panel per family (plus the overall accuracy) against optimizer steps; the 25-60 % band is shaded. A path
``FILE#NAME`` reads the dev checks of attempt NAME from the committed record ``sft_attempts.jsonl``.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mssr.io import read_jsonl

FAMILIES = ("all", "counting", "arithmetic", "bars", "geometry")


def checks(path: str) -> list[dict]:
    if "#" in path:
        record, name = path.split("#", 1)
        for attempt in read_jsonl(record):
            if attempt["attempt"] == name:
                return attempt["dev_checks"]
        raise SystemExit(f"{record}: no attempt named {name!r}")
    return [row["eval"] for row in read_jsonl(path) if "eval" in row]


def main() -> None:
    out, runs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    fig, axes = plt.subplots(1, len(FAMILIES), figsize=(4 * len(FAMILIES), 3.4), sharey=True)
    for label, path in runs:
        cs = checks(path)
        steps = [c["step"] for c in cs]
        for ax, fam in zip(axes, FAMILIES, strict=True):
            ys = [c["accuracy"] if fam == "all" else c["accuracy_by_family"].get(fam) for c in cs]
            ax.plot(steps, ys, marker="o", ms=3, label=label)
    for ax, fam in zip(axes, FAMILIES, strict=True):
        ax.axhspan(0.25, 0.60, color="green", alpha=0.08)
        ax.set_title(fam if fam != "all" else "all families")
        ax.set_xlabel("SFT step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("sampled dev accuracy (T = 1)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()

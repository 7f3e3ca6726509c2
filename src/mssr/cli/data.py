"""`mssr data`: write the built-in task's train/val/test splits and print what they hold."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mssr.io import cache_root

HELP = "Generate the built-in visual-reasoning dataset (train/val/test) and print a summary."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mssr.data.builtin import DEFAULTS, DIFFICULTIES, FAMILIES

    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: a config-keyed directory under $MSSR_CACHE/data, "
        "reused when it already exists)",
    )
    parser.add_argument("--n-train", type=int, default=DEFAULTS["n_train"])
    parser.add_argument("--n-val", type=int, default=DEFAULTS["n_val"])
    parser.add_argument("--n-test", type=int, default=DEFAULTS["n_test"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument(
        "--image-size", type=int, default=DEFAULTS["image_size"], help="square image side, px"
    )
    parser.add_argument(
        "--families", default=None, help=f"comma-separated subset of {','.join(FAMILIES)} (default: all)"
    )
    parser.add_argument(
        "--difficulty",
        default=DEFAULTS["difficulty"],
        help=f"one of {', '.join(DIFFICULTIES)}, 'mixed', or weights like easy=2,medium=1",
    )
    parser.add_argument(
        "--mc-fraction", type=float, default=DEFAULTS["mc_fraction"], help="fraction of multiple-choice items"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _difficulty(text: str):
    if "=" not in text:
        return text
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        out[key.strip()] = float(value)
    return out


def run(args: argparse.Namespace) -> int:
    from mssr.data import load_records
    from mssr.data.builtin import SPLITS, ensure_dataset, generate_dataset, summarize

    cfg = {
        "n_train": args.n_train,
        "n_val": args.n_val,
        "n_test": args.n_test,
        "seed": args.seed,
        "image_size": args.image_size,
        "families": [f.strip() for f in args.families.split(",")] if args.families else None,
        "difficulty": _difficulty(args.difficulty),
        "mc_fraction": args.mc_fraction,
    }
    t0 = time.perf_counter()
    try:
        if args.out is None:
            out = ensure_dataset(cache_root() / "data", **cfg)
        else:
            out = generate_dataset(args.out, **cfg)["dir"]
    except ValueError as exc:
        print(f"mssr data: {exc}")
        return 2
    seconds = time.perf_counter() - t0
    summary = {}
    for split in SPLITS:
        records = load_records(out, split)
        summary[split] = summarize(r.to_columns() for r in records)
    if args.json:
        print(json.dumps({"dir": str(out), "seconds": round(seconds, 2), "splits": summary}, indent=1))
        return 0
    print(f"dataset: {out}  ({seconds:.1f} s)")
    for split, s in summary.items():
        print(f"\n[{split}] {s['n']} items")
        for key in ("family", "difficulty", "template", "answer_type"):
            print(f"  {key:<12}" + "  ".join(f"{k}={v}" for k, v in s[key].items()))
        print("  answers (most common first):")
        for fam, dist in s["answers"].items():
            shown = "  ".join(f"{a}:{n}" for a, n in list(dist.items())[:12])
            more = f"  (+{len(dist) - 12} more)" if len(dist) > 12 else ""
            print(f"    {fam:<11}{shown}{more}")
    return 0

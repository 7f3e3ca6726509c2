"""`mssr data`: write the built-in task's train/val/test splits and print what they hold;
`mssr data inspect PATH_OR_ID`: what a dataset holds as mssr reads it (columns, mapping, counts, a sample, image
sizes, and the rows that would be rejected and why)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from mssr.cli.args import output_dir
from mssr.io import cache_root

HELP = (
    "Generate the built-in visual-reasoning dataset (train/val/test) and print a summary; "
    "`mssr data inspect PATH_OR_ID` shows what a dataset holds"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mssr.data.builtin import DEFAULTS, DIFFICULTIES, FAMILIES

    parser.add_argument(
        "--out",
        type=output_dir,
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
    sub = parser.add_subparsers(dest="data_command", metavar="inspect")
    sub.required = False
    ins = sub.add_parser(
        "inspect",
        help="columns and their mapping, counts, a sample row, image sizes, and the rows rejected and why",
        description="Read a dataset as `mssr train` would (data.train=PATH_OR_ID) and print what it holds.",
    )
    ins.add_argument(
        "source",
        help="a dataset directory or file, a save_to_disk directory, or a Hugging Face id owner/name@split",
    )
    ins.add_argument("--split", default=None, help="the split to read (default: @split, else every split)")
    ins.add_argument("--prompt-key", default=None, help="column of the prompt text (data.prompt_key)")
    ins.add_argument("--answer-key", default=None, help="column of the answer (data.answer_key)")
    ins.add_argument("--image-key", default=None, help="column of the image(s) (data.image_key)")
    ins.add_argument("--choices-key", default=None, help="column of the options (data.choices_key)")
    ins.add_argument("--limit", type=int, default=None, help="read only the first N rows of each split")
    ins.add_argument("--show", type=int, default=20, help="rejected rows listed (default 20)")
    ins.add_argument("--json", action="store_true", help="print the reports as JSON")


def _difficulty(text: str):
    if "=" not in text:
        return text
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        out[key.strip()] = float(value)
    return out


def inspect(args: argparse.Namespace) -> int:
    from mssr.data import Columns, DataError
    from mssr.data.inspection import format_report, inspect_dataset

    cols = Columns.with_keys(
        prompt_key=args.prompt_key,
        answer_key=args.answer_key,
        image_key=args.image_key,
        choices_key=args.choices_key,
    )
    try:
        reports = inspect_dataset(args.source, args.split, columns=cols, limit=args.limit)
    except DataError as exc:
        print(f"mssr data inspect: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(reports, indent=1, default=str))
    else:
        print("\n\n".join(format_report(r, show=args.show) for r in reports))
    return 0


def run(args: argparse.Namespace) -> int:
    if getattr(args, "data_command", None) == "inspect":
        return inspect(args)
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

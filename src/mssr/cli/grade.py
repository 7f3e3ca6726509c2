"""``mssr grade BENCHMARK --problems P --responses R``: regrade a benchmark's responses with mssr's verifier."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mssr.cli.args import non_negative_int, output_file, positive_seconds

HELP = "Regrade a file of benchmark responses; report accuracy and agreement with the official verdicts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mssr.evaluation.benchmarks import gradable

    parser.add_argument("benchmark", choices=gradable(), help="benchmark whose responses file this is")
    parser.add_argument(
        "--problems", required=True, type=Path, help="problems file or its directory (e.g. testmini.json)"
    )
    parser.add_argument(
        "--responses",
        required=True,
        type=Path,
        nargs="+",
        help="responses file(s) (e.g. output.json); several are graded one after the other",
    )
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="also grade synthetic files built from the problems, one per hard response style, with verdicts "
        "derived from the official pipeline's published rules (mssr.evaluation.study.synthetic)",
    )
    parser.add_argument(
        "--leave-one-out",
        action="store_true",
        help="leave-one-system-out: for each file, select the optional official-mode rules on the other files "
        "and grade it with that selection (official mode, in-process)",
    )
    parser.add_argument(
        "--mode",
        choices=("official", "strict"),
        default="official",
        help="official: the benchmark's own scoring conventions; strict: mssr's training rules",
    )
    parser.add_argument(
        "--json",
        type=output_file,
        default=None,
        dest="json_out",
        help="write per-problem verdicts here: [{pid, verdict, official, extracted, reason}]",
    )
    parser.add_argument(
        "--report-json", type=output_file, default=None, help="write the full report (breakdowns, classes)"
    )
    parser.add_argument(
        "--workers",
        type=non_negative_int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes (0 = in-process)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        help="seconds per response before it counts as a timeout",
    )
    parser.add_argument("--show", type=int, default=20, help="disagreements to print (-1 = all)")
    parser.add_argument(
        "--judge-url",
        default=None,
        help="OpenAI-compatible base URL (…/v1) of an LLM judge for items the rules cannot settle",
    )
    parser.add_argument("--judge-model", default=None, help="model name for the judge")
    parser.add_argument(
        "--judge-key-env", default="OPENAI_API_KEY", help="environment variable holding the judge's key"
    )


def _pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:6.2f}%" if b else "    n/a"


def run(args: argparse.Namespace) -> int:
    from mssr.evaluation.benchmarks import BenchmarkDataError, get

    judge = None
    if args.judge_url or args.judge_model:
        if not (args.judge_url and args.judge_model):
            print("error: --judge-url and --judge-model go together", file=sys.stderr)
            return 2
        from mssr.rewards.judge import LLMJudge

        judge = LLMJudge(args.judge_url, args.judge_model, api_key=os.environ.get(args.judge_key_env))
    files: dict[str, list] = {}
    try:
        for path in args.responses:
            files[str(path)] = get(args.benchmark).load_responses(args.problems, path)
        if (args.synthetic or args.leave_one_out) and args.benchmark != "mathvista":
            print("error: --synthetic and --leave-one-out are for mathvista", file=sys.stderr)
            return 2
        if args.synthetic:
            from mssr.evaluation.study.generalisation import synthetic_files

            files.update(synthetic_files(args.problems))
    except BenchmarkDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.leave_one_out:
        if len(files) < 2:
            print("error: --leave-one-out needs two or more files (or --synthetic)", file=sys.stderr)
            return 2
        from mssr.evaluation.study.generalisation import format_table, leave_one_out

        results = leave_one_out(files)
        print(f"{args.benchmark}: leave-one-system-out agreement with the official verdicts (official mode)")
        print(format_table(results))
        if args.report_json:
            from dataclasses import asdict

            args.report_json.parent.mkdir(parents=True, exist_ok=True)
            args.report_json.write_text(json.dumps([asdict(r) for r in results], indent=1))
        return 0
    if len(files) > 1 and (args.json_out or args.report_json):
        print("error: --json and --report-json take a single responses file", file=sys.stderr)
        return 2
    for name, items in files.items():
        _report(args, name, items, judge)
        if len(files) > 1:
            print()
    return 0


def _report(args: argparse.Namespace, name: str, items: list, judge: object) -> None:
    from mssr.evaluation.regrade import CLASSES, grade

    rep = grade(
        args.benchmark, items, mode=args.mode, timeout_s=args.timeout, num_workers=args.workers, judge=judge
    )

    print(f"{args.benchmark} ({args.mode} mode): {name}")
    print(f"  accuracy   {_pct(rep.n_correct, rep.n)}  ({rep.n_correct}/{rep.n})")
    if rep.n_with_official:
        print(
            f"  official   {_pct(rep.n_official_correct, rep.n_with_official)}  "
            f"({rep.n_official_correct}/{rep.n_with_official}, the file's own verdicts)"
        )
        print(f"  agreement  {_pct(rep.n_agree, rep.n_with_official)}  ({rep.n_agree}/{rep.n_with_official})")
    print(f"  timeouts {rep.n_timeouts}, errors {rep.n_errors}, {rep.elapsed_s:.1f} s on {rep.backend}")
    for key, cells in rep.breakdown.items():
        print(f"\n  by {key}:")
        print(f"    {'value':28s} {'n':>5s} {'ours':>8s} {'official':>8s} {'agree':>8s}")
        for value, c in sorted(cells.items(), key=lambda kv: -kv[1]["n"]):
            print(
                f"    {value[:28]:28s} {c['n']:5d} {_pct(c['correct'], c['n']):>8s} "
                f"{_pct(c['official_correct'], c['with_official']):>8s} {_pct(c['agree'], c['with_official']):>8s}"
            )
    if rep.n_with_official and args.benchmark == "mathvista":
        from mssr.evaluation.study.generalisation import STYLES, per_style

        classes = {d["pid"]: d["class"] for d in rep.disagreements}
        print("\n  agreement by response style (disagreements by class within it):")
        print(f"    {'style':18s} {'n':>5s} {'agree':>8s}")
        for style, c in sorted(per_style(items, rep.verdicts, classes).items(), key=lambda kv: -kv[1]["n"]):
            parts = ", ".join(f"{k} {v}" for k, v in sorted(c["classes"].items(), key=lambda kv: -kv[1]))
            print(f"    {style:18s} {c['n']:5d} {_pct(c['agree'], c['n']):>8s}  {STYLES[style]}")
            if parts:
                print(f"    {'':18s} {'':5s} {'':8s}    disagreements: {parts}")
    if rep.classes:
        print("\n  disagreements by class:")
        for cls, n in rep.classes.items():
            print(f"    {n:4d}  {cls}: {CLASSES.get(cls, cls)}")
    shown = rep.disagreements if args.show < 0 else rep.disagreements[: args.show]
    if shown:
        print(f"\n  disagreements ({len(shown)} of {len(rep.disagreements)}):")
        for d in shown:
            print(
                f"    pid {d['pid']}: ours={d['verdict']} official={d['official']} [{d['class']}] "
                f"extracted={d['extracted']!r} official_extraction={d['official_extraction']!r} answer={d['answer']!r}"
            )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(rep.verdicts, ensure_ascii=False, indent=1))
        print(f"\n  verdicts written to {args.json_out}")
    if args.report_json:
        args.report_json.parent.mkdir(parents=True, exist_ok=True)
        args.report_json.write_text(json.dumps(rep.to_dict(), ensure_ascii=False, indent=1))

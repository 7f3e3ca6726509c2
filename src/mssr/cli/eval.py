"""``mssr eval``: evaluate checkpoints on the generalisation benchmarks (and the built-in task) from local
files; resumable; prints and writes a Table-1-style summary. See docs/evaluation.md.

    mssr eval --model runs/mssr --benchmarks logicvista,builtin --data-dir ~/benchmarks
    mssr eval --model base --model runs/mssr --benchmarks paper --data-dir ~/benchmarks   # side by side
    mssr eval --compare evals/base evals/mssr                                             # tables only
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

HELP = "evaluate checkpoints on benchmarks from local files (pass@1/pass@k, resumable, Table-1 summary)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[LABEL=]MODEL",
        help="policy directory, training checkpoint (step_*/), run directory (its latest checkpoint), "
        "'base[:PRESET]' (the cached SFT base of a tiny preset) or 'scratch[:PRESET]'; repeat to compare",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="YAML",
        help="training config whose built-in task, instruction, reward and response length 'builtin' uses, in "
        "place of the model's run config (for a policy without one, e.g. an SFT base: --model "
        "runs/reasoning-sft/policy --config configs/cpu/reasoning.yaml)",
    )
    p.add_argument(
        "--benchmarks",
        "-b",
        default="builtin",
        help="comma-separated: mathverse, mathvista, mmk12, r1onevision, hallusionbench, wemath, logicvista, "
        "builtin, jsonl:PATH; 'paper' = the five of Table 1 (default: builtin)",
    )
    p.add_argument(
        "--data-dir",
        default=os.environ.get("MSSR_BENCHMARKS"),
        help="directory holding one sub-directory per benchmark (default: $MSSR_BENCHMARKS)",
    )
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="where one benchmark's files are (its directory or data file); overrides --data-dir",
    )
    p.add_argument(
        "--out", default="evals", help="output root; each model goes to OUT/LABEL (default: evals)"
    )
    p.add_argument("--overwrite", action="store_true", help="discard earlier results in OUT/LABEL")
    g = p.add_argument_group("protocol (default: the paper's — think/boxed instruction, greedy, pass@1)")
    g.add_argument("--samples", type=int, default=1, help="responses per item; >1 samples them for pass@k")
    g.add_argument("--k", default=None, help="pass@k to report, e.g. 1,4,8 (default: 1 and --samples)")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (--samples > 1)")
    g.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (--samples > 1)")
    g.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="response length limit (default: 2048; builtin: the training config's rollout.max_new_tokens)",
    )
    g.add_argument(
        "--instruction",
        default=None,
        help="'default' (docs/method.md's think/boxed instruction), 'none', or your own text",
    )
    g.add_argument("--system-prompt", default=None, help="replace the chat template's system turn")
    g.add_argument(
        "--mode",
        choices=("strict", "official"),
        default="strict",
        help="grading rules: strict (mssr's) or official (MathVista's scoring conventions)",
    )
    g.add_argument(
        "--boxed-only",
        action="store_true",
        help="count only answers in \\boxed{} / <answer> (the training reward's rule)",
    )
    g.add_argument(
        "--reward",
        default=None,
        help="grade every benchmark with this reward spec instead (e.g. accuracy, pkg.mod:fn)",
    )
    g.add_argument("--seed", type=int, default=0, help="sampling seed")
    r = p.add_argument_group("running")
    r.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="prompts per generation batch (default 32; builtin: the training config's val.batch_size)",
    )
    r.add_argument(
        "--limit", type=int, default=None, help="evaluate only the first N items of each benchmark"
    )
    r.add_argument(
        "--split", default=None, help="builtin: which split (default: the training config's val split)"
    )
    r.add_argument(
        "--hallusion-split", choices=("image", "all"), default="image", help="HallusionBench questions"
    )
    r.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    r.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: the checkpoint's)")
    r.add_argument("--workers", type=int, default=0, help="grading worker processes (0 = in-process)")
    r.add_argument("--timeout", type=float, default=5.0, help="grading seconds per response")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--compare",
        nargs="+",
        default=None,
        metavar="DIR",
        help="print the side-by-side table of earlier evaluations (each DIR an eval directory or a parent "
        "of several) and exit; with --out FILE.md also write it",
    )
    p.add_argument("--list", action="store_true", help="list the benchmarks and where their files go")


# --------------------------------------------------------------------------------------------- helpers
class CliError(Exception):
    pass


def _split_label(spec: str) -> tuple[str | None, str]:
    if "=" in spec and not Path(spec).exists():
        label, _, rest = spec.partition("=")
        if label and "/" not in label:
            return label, rest
    return None, spec


def resolve_model(spec: str) -> tuple[str, Path | None, Path | None, str | None]:
    """``(kind, policy_dir, train_config, preset)`` for a ``--model`` value; kind is path|base|scratch."""
    if spec.split(":")[0] in ("base", "scratch"):
        kind, _, preset = spec.partition(":")
        return kind, None, None, preset or "tiny"
    p = Path(spec).expanduser()
    if not p.exists():
        raise CliError(f"--model {spec}: no such directory (nor base[:PRESET] / scratch[:PRESET])")
    from mssr.trainer.rundir import RunError, find_policy

    try:
        found = find_policy(p)
    except RunError as exc:
        raise CliError(f"--model {spec}: {exc}") from None
    if found is not None:
        return "path", found[0], found[1], None
    raise CliError(
        f"--model {spec}: not a policy directory (config.json), a checkpoint (policy/) or a run (checkpoints/)"
    )


def _train_config(path: Path | None) -> Any:
    from mssr.config import ConfigError, load_config
    from mssr.trainer.config import TrainConfig

    if path is None:
        return TrainConfig()
    try:  # a missing file is a ConfigError too (mssr.config.read_yaml)
        return load_config(TrainConfig, path)
    except ConfigError as exc:
        raise CliError(f"training config {path}: {exc}") from None


def load_model(kind: str, policy_dir: Path | None, preset: str | None, tc: Any, args: argparse.Namespace):
    import torch

    from mssr.models import build_tiny_policy, load_policy

    if kind == "base":
        from mssr.sft import ensure_base_policy
        from mssr.trainer.setup import sft_config

        tc.model.preset = preset
        policy_dir = ensure_base_policy(sft_config(tc))
    if kind == "scratch":
        policy = build_tiny_policy(preset or "tiny", seed=args.seed)
        source = f"scratch:{preset}"
    else:
        assert policy_dir is not None
        policy = load_policy(policy_dir, dtype=args.dtype)
        source = str(policy_dir)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    policy.model.to(device)
    policy.model.eval()
    return policy, source


def builtin_location(tc: Any, split: str | None) -> tuple[Path, str]:
    """The dataset directory and split training validates on, for a training config ``tc``."""
    d = tc.data
    if d.val:
        p = Path(d.val)
        return p, split or (d.val_split if p.is_dir() else p.stem)
    if d.train:
        return Path(d.train), split or d.val_split or "val"
    from mssr.trainer.setup import builtin_root

    return builtin_root(tc), split or "val"  # the directory training generates and pins


def _ks(args: argparse.Namespace) -> tuple[int, ...]:
    if args.k:
        try:
            return tuple(int(x) for x in args.k.split(",") if x.strip())
        except ValueError:
            raise CliError(f"--k {args.k!r}: expected comma-separated integers") from None
    return (1, args.samples)


def _instruction(value: str | None, default: str | None) -> str | None:
    if value is None:
        return default
    return None if value.lower() == "none" else value


def base_settings(args: argparse.Namespace):
    from mssr.evaluation import EvalSettings

    return EvalSettings(
        samples=args.samples,
        ks=_ks(args),
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens or 2048,
        instruction=_instruction(args.instruction, "default"),
        system_prompt=args.system_prompt,
        reward=args.reward,
        mode=args.mode,
        require_delimited=args.boxed_only,
        seed=args.seed,
        batch_size=args.batch_size or 32,
        timeout_s=args.timeout,
        num_workers=args.workers,
    )


def builtin_settings(args: argparse.Namespace, tc: Any, base: Any):
    """The built-in task is graded as training validates it: the run's reward, instruction and length."""
    reward = args.reward or tc.reward.spec
    return base.replace(
        max_new_tokens=args.max_new_tokens or tc.rollout.max_new_tokens,
        batch_size=args.batch_size or tc.val.batch_size,
        instruction=_instruction(args.instruction, tc.data.instruction),
        system_prompt=args.system_prompt if args.system_prompt is not None else tc.data.system_prompt,
        reward=reward,
        require_clean_end=tc.reward.require_clean_end if reward == "accuracy" else False,
    )


def load_benchmarks(args: argparse.Namespace, tc: Any, names: list[str]):
    """``[(BenchmarkData, EvalSettings)]`` for the requested names (errors name the benchmark)."""
    from mssr.evaluation import BenchmarkRun, benchmarks

    overrides: dict[str, str] = {}
    for spec in args.data:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise CliError(f"--data {spec!r}: expected NAME=PATH")
        overrides[benchmarks.get(name).name] = path
    base = base_settings(args)
    runs = []
    for name in names:
        if name.lower().startswith("jsonl:"):
            path = name.split(":", 1)[1]
            data = benchmarks.get("jsonl").load(path, limit=args.limit)
            runs.append(BenchmarkRun(data, base))
            continue
        bench = benchmarks.get(name)
        if bench.name == "builtin":
            if "builtin" in overrides:
                root, split = Path(overrides["builtin"]), args.split or "val"
            else:
                root, split = builtin_location(tc, args.split)
            limit = args.limit if args.limit is not None else tc.val.max_items
            data = bench.load(root, split=split, limit=limit)
            runs.append(BenchmarkRun(data, builtin_settings(args, tc, base), {"split": split}))
            continue
        if bench.name in overrides:
            path = Path(overrides[bench.name])
        elif args.data_dir:
            path = bench.find(args.data_dir)
        else:
            raise CliError(
                f"{bench.name}: say where its files are with --data-dir DIR or --data {bench.name}=PATH"
            )
        options = {"split": args.hallusion_split} if bench.name == "hallusionbench" else {}
        data = bench.load(path, limit=args.limit, **options)
        runs.append(BenchmarkRun(data, base))
    seen: set[str] = set()
    for r in runs:
        if r.data.name in seen:
            raise CliError(f"two benchmarks are named {r.data.name!r} (rename one of the jsonl files)")
        seen.add(r.data.name)
    return runs


def _label(spec_label: str | None, kind: str, policy_dir: Path | None, preset: str | None) -> str:
    if spec_label:
        return spec_label
    if kind != "path":
        return f"{kind}-{preset}"
    assert policy_dir is not None
    from mssr.trainer.rundir import CHECKPOINTS, POLICY

    parts = [q for q in policy_dir.parts if q not in (POLICY, CHECKPOINTS)]
    return "-".join(parts[-2:]) if parts and parts[-1].startswith("step_") else parts[-1]


# --------------------------------------------------------------------------------------------- commands
def _list() -> int:
    from mssr.evaluation import benchmarks

    for name in benchmarks.available():
        b = benchmarks.get(name)
        where = f"DATA_DIR/{b.dirs[0]}/ ({', '.join(b.files[:3])}…)" if b.dirs else "-"
        print(f"{name:15s} {b.title:15s} {where}\n{'':15s} {b.obtain}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from mssr.evaluation import format_table, load_run
    from mssr.evaluation.summary import format_details

    dirs: list[Path] = []
    for d in args.compare:
        p = Path(d)
        if (p / "run.json").is_file():
            dirs.append(p)
        elif p.is_dir() and any((c / "run.json").is_file() for c in p.iterdir() if c.is_dir()):
            dirs.extend(sorted(c for c in p.iterdir() if (c / "run.json").is_file()))
        else:
            raise CliError(
                f"--compare {d}: not an evaluation directory (no run.json in it or its sub-directories)"
            )
    runs = [load_run(d) for d in dirs]
    table = format_table(runs)
    print(table)
    print()
    for run in runs:
        print(f"{run.label} ({run.model})\n{format_details(run)}\n")
    if args.out and args.out.endswith(".md"):
        Path(args.out).write_text(table + "\n", encoding="utf-8")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import shutil

    from mssr.evaluation import benchmarks, evaluate_policy, write_summary
    from mssr.io import DirectoryLocked, RunLock

    if not args.model:
        raise CliError("name a model with --model (or use --compare / --list)")
    names = benchmarks.expand([args.benchmarks])
    if not names:
        raise CliError("--benchmarks is empty")
    for n in names:
        if not n.lower().startswith("jsonl:"):
            benchmarks.get(n)  # unknown names fail before any model is loaded
    progress = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    summaries = []
    used_labels: set[str] = set()
    for spec in args.model:
        spec_label, model_spec = _split_label(spec)
        kind, policy_dir, cfg_path, preset = resolve_model(model_spec)
        tc = _train_config(Path(args.config) if args.config else cfg_path)
        runs = load_benchmarks(args, tc, names)
        label = _label(spec_label, kind, policy_dir, preset)
        if label in used_labels:
            raise CliError(f"two models are labelled {label!r}; name them with --model LABEL=PATH")
        used_labels.add(label)
        out = Path(args.out) / label
        # one evaluation per result directory (the lock is a sibling file: --overwrite deletes the directory)
        lock = RunLock(out, what="mssr eval", path=out.parent / f".{out.name}.lock")
        try:
            lock.acquire()
        except DirectoryLocked as exc:
            raise CliError(str(exc)) from None
        try:
            if args.overwrite and out.exists():
                shutil.rmtree(out)
            policy, source = load_model(kind, policy_dir, preset, tc, args)
            if progress:
                progress(f"{label}: {source} on {', '.join(r.data.name for r in runs)} -> {out}")
            summary = evaluate_policy(policy, runs, out, label=label, model=source, progress=progress)
        finally:
            lock.release()
        summaries.append(summary)
        del policy
    from mssr.evaluation.summary import format_details

    if len(summaries) > 1:
        table = write_summary(Path(args.out), summaries, name="compare")
    else:
        from mssr.evaluation import format_table

        table = format_table(summaries)
    print(table)
    print()
    for s in summaries:
        print(f"{s.label} ({s.model})\n{format_details(s)}\n")
    where = Path(args.out) / ("compare.md" if len(summaries) > 1 else f"{summaries[0].label}/summary.md")
    print(f"results: {Path(args.out)}/<label>/results/*.jsonl; summary: {where}")
    return 0


def run(args: argparse.Namespace) -> int:
    from mssr.evaluation import ResultsError
    from mssr.evaluation.benchmarks import BenchmarkDataError, UnknownBenchmarkError

    try:
        if args.list:
            return _list()
        if args.compare:
            return _compare(args)
        return _evaluate(args)
    except (CliError, BenchmarkDataError, UnknownBenchmarkError, ResultsError, ValueError) as exc:
        print(f"mssr eval: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "mssr eval: interrupted; finished items are saved — run the same command again to resume",
            file=sys.stderr,
        )
        return 130

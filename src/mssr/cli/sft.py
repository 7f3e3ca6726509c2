"""`mssr sft`: supervised warm start of a tiny policy on the built-in task's worked solutions (cached)."""

from __future__ import annotations

import argparse
import json
import time

HELP = "Train (or reuse from the cache) the SFT base policy for RL: a tiny Qwen2.5-VL on worked solutions."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mssr.models.presets import PRESETS
    from mssr.trainer.sft import SFTConfig

    d = SFTConfig()
    parser.add_argument("--preset", default=d.preset, choices=sorted(PRESETS), help="model size")
    parser.add_argument(
        "--out", default=None, help="write the run here instead of the config-keyed cache dir"
    )
    parser.add_argument(
        "--cache-dir", default=None, help="cache root (default: $MSSR_CACHE or ~/.cache/mssr)"
    )
    parser.add_argument("--data-dir", default=None, help="train on this dataset directory (train/val splits)")
    parser.add_argument(
        "--data-seed", type=int, default=d.data["seed"], help="seed of the generated SFT data"
    )
    parser.add_argument("--n-train", type=int, default=d.data["n_train"])
    parser.add_argument("--n-val", type=int, default=d.data["n_val"], help="generated dev items")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--difficulty", default=None, help="data difficulty (default: the data default)")
    parser.add_argument("--steps", type=int, default=d.max_steps, help="maximum optimizer steps")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    parser.add_argument(
        "--stop-accuracy",
        type=float,
        default=d.stop_accuracy,
        help="stop at the first dev check whose sampled accuracy reaches this (negative: never)",
    )
    parser.add_argument("--eval-every", type=int, default=d.eval_every)
    parser.add_argument("--n-dev", type=int, default=d.n_dev)
    parser.add_argument("--seed", type=int, default=d.seed, help="data order and evaluation sampling")
    parser.add_argument("--init-seed", type=int, default=d.init_seed, help="model initialisation")
    parser.add_argument(
        "--instruction",
        default=None,
        help="instruction appended to each question (default: the paper's; 'none' for no instruction)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--force", action="store_true", help="retrain even if the cached run exists")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the run's metrics as JSON")


def config_from_args(args: argparse.Namespace):
    from mssr.trainer.sft import SFTConfig

    d = SFTConfig()
    data = dict(d.data)
    data.update(seed=args.data_seed, n_train=args.n_train, n_val=args.n_val, image_size=args.image_size)
    if args.difficulty:
        data["difficulty"] = args.difficulty
    instruction = d.instruction
    if args.instruction is not None:
        instruction = None if args.instruction.lower() == "none" else args.instruction
    return SFTConfig(
        preset=args.preset,
        data=data,
        data_dir=args.data_dir,
        instruction=instruction,
        init_seed=args.init_seed,
        seed=args.seed,
        max_steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=min(args.warmup_steps, max(args.steps - 1, 0)),
        stop_accuracy=None if args.stop_accuracy is None or args.stop_accuracy < 0 else args.stop_accuracy,
        eval_every=args.eval_every,
        n_dev=args.n_dev,
        cache_dir=args.cache_dir,
        out=args.out,
        threads=args.threads,
        progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    from mssr.trainer.sft import DONE_FILE, read_metrics, run_sft

    cfg = config_from_args(args)
    cached = (cfg.output_dir() / DONE_FILE).is_file() and not args.force
    t0 = time.perf_counter()
    run_dir = run_sft(cfg, force=args.force)
    seconds = time.perf_counter() - t0
    metrics = read_metrics(run_dir)
    if args.json:
        print(
            json.dumps(
                {"run_dir": str(run_dir), "cached": cached, "seconds": round(seconds, 2), **metrics},
                indent=2,
                default=str,
            )
        )
        return 0
    dev = metrics.get("dev") or {}
    print(f"{'reused cached' if cached else 'trained'} SFT base in {seconds:.1f} s: {run_dir}")
    print(f"  policy: {run_dir / 'policy'}")
    print(
        f"  steps: {metrics['steps']} (training wall-clock {metrics['wall_s']} s, {metrics['threads']} threads)"
    )
    if dev:
        print(
            f"  dev ({dev['n']} items, sampled T=1): accuracy {dev['accuracy']:.3f}, format {dev['format_rate']:.3f},"
            f" sampled-token entropy {dev['sampled_token_entropy']:.4f}, full entropy {dev['full_entropy']:.4f}"
        )
    return 0

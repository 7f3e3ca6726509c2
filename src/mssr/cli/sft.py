"""`mssr sft`: supervised warm start of a tiny policy on the built-in task's worked solutions (cached).

Configured like ``mssr train``: an optional YAML file, then dotted ``key=value`` overrides of
:class:`mssr.sft.SFTConfig` (``mssr sft max_steps=200 data.seed=2 stop_accuracy=null``)."""

from __future__ import annotations

import argparse
import json
import sys
import time

HELP = "Train (or reuse from the cache) the SFT base policy for RL: a built-in preset (tiny Qwen2.5-VL by default; any family preset) on worked solutions."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=None, help="YAML config (keys of mssr.sft.SFTConfig)")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="dotted overrides, e.g. preset=small max_steps=200 data.seed=2 stop_accuracy=null threads=2",
    )
    parser.add_argument("--force", action="store_true", help="retrain even if the cached run exists")
    parser.add_argument("--json", action="store_true", help="print the run's metrics as JSON")


def run(args: argparse.Namespace) -> int:
    from mssr.config import ConfigError
    from mssr.sft import load_sft_config, read_metrics, run_sft
    from mssr.sft.cache import is_cached

    try:
        cfg = load_sft_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"mssr sft: config error: {e}", file=sys.stderr)
        return 2
    cached = is_cached(cfg) and not args.force
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

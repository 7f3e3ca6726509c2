"""``mssr train``: RL training from a YAML config plus ``key=value`` overrides (no arguments: the CPU default)."""

from __future__ import annotations

import argparse
import json

HELP = "train a VLM with MSSR / MVSR / GRPO / RLOO / REINFORCE++ (default: MSSR on the built-in task, CPU)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", "-c", default=None, help="YAML config (see configs/); default: built-in CPU job"
    )
    p.add_argument(
        "overrides", nargs="*", help="dotted overrides, e.g. algorithm.name=grpo optim.lr=3e-4 steps=50"
    )


def run(args: argparse.Namespace) -> int:
    from mssr.config import ConfigError, load_config
    from mssr.trainer.api import train
    from mssr.trainer.config import TrainConfig

    try:
        cfg = load_config(TrainConfig, args.config, args.overrides)
    except ConfigError as e:
        print(f"mssr train: config error: {e}")
        return 2
    from mssr.trainer import distributed as dist
    from mssr.trainer.memory import MemoryPlanError

    try:
        summary = train(cfg)
    except ConfigError as e:  # settings that only the trainer can judge (precision, strategy, LoRA)
        print(f"mssr train: config error: {e}")
        return 2
    except MemoryPlanError as e:
        print(f"mssr train: this config does not fit the device (MSSR_MEMORY_CHECK=0 starts anyway):\n{e}")
        return 2

    if dist.is_main():
        print(json.dumps(summary, indent=2))
    dist.shutdown()
    return 0

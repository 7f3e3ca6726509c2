"""``mssr plan CONFIG [--devices N] [--device-memory GB] [overrides]``: will a training config fit the GPUs?

Prints the per-device memory plan (:mod:`mssr.trainer.memory`): what each part of the training state takes,
the peak, a verdict and, when it does not fit, what would. Exit status: 0 fits, 1 does not fit, 2 config
error. Nothing is loaded: the model is built without weights on the meta device.
"""

from __future__ import annotations

import argparse
import os
import sys

from mssr.cli.args import OneLineParser, positive_int, positive_number

HELP = "estimate per-device GPU memory of a training config; exit 0 if it fits, 1 if not, 2 on a config error"


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--devices",
        type=positive_int,
        default=int(os.environ.get("WORLD_SIZE", "1")),
        help="number of GPUs (data-parallel processes); default $WORLD_SIZE or 1",
    )
    p.add_argument(
        "--device-memory",
        type=positive_number,
        default=80.0,
        help="memory per GPU in GB (10^9 bytes); default 80",
    )
    p.add_argument("--strategy", choices=("ddp", "fsdp"), default=None, help="override parallel.strategy")


def add_arguments(p: argparse.ArgumentParser) -> None:
    _options(p)
    p.add_argument("config", help="YAML training config, e.g. configs/paper/qwen2_5_vl_7b_mssr.yaml")
    # REMAINDER: options may follow the overrides (`mssr plan CONFIG --devices 8 optim.micro_batch_size=2`);
    # run() separates them again
    p.add_argument(
        "overrides",
        nargs=argparse.REMAINDER,
        help="dotted overrides, e.g. parallel.strategy=fsdp optim.micro_batch_size=2",
    )


def _split(args: argparse.Namespace) -> argparse.Namespace:
    """Options given after CONFIG are in ``args.overrides``: parse them out, the rest are overrides."""
    p = OneLineParser(prog="mssr plan", add_help=False)
    _options(p)
    p.add_argument("overrides", nargs="*")
    p.set_defaults(devices=args.devices, device_memory=args.device_memory, strategy=args.strategy)
    out = p.parse_intermixed_args(args.overrides)
    out.config = args.config
    return out


def run(args: argparse.Namespace) -> int:
    from mssr.config import ConfigError, load_config
    from mssr.trainer.config import TrainConfig
    from mssr.trainer.memory import format_plan, plan_memory

    args = _split(args)
    try:
        if args.devices < 1 or args.device_memory <= 0:
            raise ConfigError("--devices must be >= 1 and --device-memory > 0")
        cfg = load_config(TrainConfig, args.config, args.overrides)
        plan = plan_memory(
            cfg, devices=args.devices, device_memory_gb=args.device_memory, strategy=args.strategy
        )
    except ConfigError as e:
        print(f"mssr plan: config error: {e}", file=sys.stderr)
        return 2
    print(format_plan(plan))
    return 0 if plan.fits else 1

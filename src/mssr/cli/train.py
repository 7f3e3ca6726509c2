"""``mssr train``: RL training from a YAML config plus ``key=value`` overrides (no arguments: the CPU default).

Exit codes: 0 done; 2 a mistake the user fixes (config, data, directory, permissions, disk, a failing reward),
printed as one line (``--debug`` or ``MSSR_DEBUG=1`` shows the traceback); 130 / 143 / 128+N interrupted by
SIGINT / SIGTERM / signal N after checkpointing (run the same command to resume); 1 an unexpected error
(with its traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HELP = "train a VLM with MSSR / MVSR / GRPO / RLOO / REINFORCE++ (default: MSSR on the built-in task, CPU)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", "-c", default=None, help="YAML config (see configs/); default: built-in CPU job"
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error instead of one line (also: MSSR_DEBUG=1)",
    )
    p.add_argument(
        "overrides", nargs="*", help="dotted overrides, e.g. algorithm.name=grpo optim.lr=3e-4 steps=50"
    )


def _debug(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("MSSR_DEBUG", "") not in ("", "0")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{text}: {exc.filename}"
    return " ".join(text.split())


def run(args: argparse.Namespace) -> int:
    from mssr.config import ConfigError, load_config
    from mssr.data.record import DataError
    from mssr.rewards import RewardRangeError, RewardSpecError
    from mssr.trainer import distributed as dist
    from mssr.trainer.api import train
    from mssr.trainer.config import TrainConfig
    from mssr.trainer.memory import MemoryPlanError
    from mssr.trainer.rundir import RunError, TrainingInterrupted

    debug = _debug(args)
    try:
        cfg = load_config(TrainConfig, args.config, args.overrides)
        summary = train(cfg)
    except (
        ConfigError
    ) as e:  # at load time, or settings only the trainer can judge (precision, strategy, LoRA)
        if debug:
            raise
        print(f"mssr train: config error: {_one_line(e)}", file=sys.stderr)
        return 2
    except MemoryPlanError as e:
        if debug:
            raise
        print(
            f"mssr train: this config does not fit the device (MSSR_MEMORY_CHECK=0 starts anyway):\n{e}",
            file=sys.stderr,
        )
        return 2
    except TrainingInterrupted as e:
        if dist.is_main():
            print(f"mssr train: {e}", file=sys.stderr)
        # every rank stops after the same step (the stop flag is all-reduced), so all of them get here: leave the
        # process group as a finished run does, or a rank may abort at exit (docs/platform.md, torchrun + gloo)
        dist.shutdown()
        return e.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        print(
            "mssr train: aborted by a second Ctrl-C: the step in progress is lost; run the same command again "
            "to resume from the latest checkpoint",
            file=sys.stderr,
        )
        return 130
    except (RunError, DataError, RewardSpecError, RewardRangeError, OSError) as e:
        if debug:
            raise
        print(f"mssr train: error: {_one_line(e)} (--debug shows the traceback)", file=sys.stderr)
        return 2

    if dist.is_main():
        print(json.dumps(summary, indent=2))
    dist.shutdown()
    return 0

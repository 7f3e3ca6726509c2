"""Step time of the trainer in float32 vs bfloat16 compute per preset, and FSDP2 vs DDP, as ratios in one run.

    python bench/precision_sharding.py precision --presets tiny small base      # one process
    torchrun --nproc_per_node 2 bench/precision_sharding.py sharding --preset base  # 2 processes

``precision``: for each preset, two trainers over the same randomly initialised policy (float32 master
weights in both; forwards in float32 vs under bfloat16 autocast) take turns, step by step, so both see the same
machine load; warm-up steps are excluded. ``sharding``: the same with ``parallel.strategy=ddp`` vs ``fsdp`` in
the same processes (run it under torchrun). MSSR, random policy (no SFT warm start), a built-in dataset of 64
items, one rollout per prompt, ``--new-tokens`` new tokens, one torch thread per process. The numbers in
docs/training.md "Precision" and "Sharding" come from this script; the 1-minute load average is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def _trainer(args: argparse.Namespace, data: Path, out: Path, *overrides: str):
    from mssr.config import load_config
    from mssr.trainer.config import TrainConfig
    from mssr.trainer.trainer import RLTrainer

    cfg = load_config(
        TrainConfig,
        None,
        [
            f"data.train={data}",
            f"output_dir={out}",
            "device=cpu",
            "model.warm_start=false",
            "algorithm.name=mssr",
            "algorithm.tracker.init=none",
            f"rollout.rollouts_per_step={args.rollouts}",
            f"rollout.gen_batch_size={args.rollouts}",
            f"rollout.max_new_tokens={args.new_tokens}",
            "optim.mini_batch_prompts=16",
            "optim.micro_batch_size=8",
            "val.every=0",
            "val.at_start=false",
            "checkpoint.every=0",
            "logging.progress=false",
            "logging.tensorboard=false",
            "logging.plot=false",
            *overrides,
        ],
    )
    return RLTrainer(cfg)


def _alternate(arms: dict, steps: int, warmup: int) -> dict[str, dict[str, float]]:
    """Step every arm in turn; median step time and stage times over the non-warm-up steps."""
    times: dict[str, list[dict[str, float]]] = {k: [] for k in arms}
    for step in range(1, warmup + steps + 1):
        for name, trainer in arms.items():
            t = time.perf_counter()
            m = trainer.train_step(step)
            wall = time.perf_counter() - t
            if step > warmup:
                times[name].append(
                    {"step": wall, **{k[9:]: v for k, v in m.items() if k.startswith("timing_s/")}}
                )
    out = {}
    for name, rows in times.items():
        out[name] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    return out


def precision(args: argparse.Namespace, data: Path, work: Path) -> dict:
    res = {}
    for preset in args.presets:
        arms = {
            dtype: _trainer(
                args, data, work / f"{preset}-{dtype}", f"model.preset={preset}", f"model.dtype={dtype}"
            )
            for dtype in ("float32", "bfloat16")
        }
        r = _alternate(arms, args.steps, args.warmup)
        r["ratio_bf16_over_fp32"] = {k: r["bfloat16"][k] / r["float32"][k] for k in r["float32"]}
        res[preset] = r
        print(
            f"{preset:5s} step fp32 {r['float32']['step']:.2f}s  bf16 {r['bfloat16']['step']:.2f}s  "
            f"ratio bf16/fp32: step {r['ratio_bf16_over_fp32']['step']:.2f}, "
            f"gen {r['ratio_bf16_over_fp32']['gen']:.2f}, update {r['ratio_bf16_over_fp32']['update']:.2f}  "
            f"(load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    return res


def sharding(args: argparse.Namespace, data: Path, work: Path) -> dict:
    from mssr.trainer import distributed as dist

    arms = {
        s: _trainer(
            args,
            data,
            work / s,
            f"model.preset={args.preset}",
            f"model.dtype={args.dtype}",
            f"parallel.strategy={s}",
        )
        for s in ("ddp", "fsdp")
    }
    assert arms["fsdp"].strategy.sharded or dist.world_size() == 1
    r = _alternate(arms, args.steps, args.warmup)
    r["ratio_fsdp_over_ddp"] = {k: r["fsdp"][k] / r["ddp"][k] for k in r["ddp"]}
    if dist.is_main():
        q = r["ratio_fsdp_over_ddp"]
        print(
            f"{args.preset} {args.dtype} x{dist.world_size()}: step ddp {r['ddp']['step']:.2f}s  fsdp "
            f"{r['fsdp']['step']:.2f}s  ratio fsdp/ddp: step {q['step']:.2f}, gen {q['gen']:.2f}, "
            f"update {q['update']:.2f}  (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("precision", "sharding"))
    p.add_argument("--presets", nargs="+", default=["tiny", "small", "base"])
    p.add_argument("--preset", default="base", help="sharding: the preset")
    p.add_argument("--dtype", default="float32", help="sharding: compute dtype of both arms")
    p.add_argument("--rollouts", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from mssr.data.builtin import generate_dataset
    from mssr.trainer import distributed as dist

    dist.init_from_env(torch.device("cpu"))
    # one work directory for all ranks (rank 0's), removed by rank 0 at the end
    work = Path(dist.broadcast_object(tempfile.mkdtemp(prefix="mssr-bench-") if dist.is_main() else None))
    data = work / "data"
    if dist.is_main():
        generate_dataset(data, n_train=64, n_val=0, n_test=0, seed=3)
    dist.barrier()
    try:
        res = precision(args, data, work) if args.mode == "precision" else sharding(args, data, work)
    finally:
        dist.barrier()
        if dist.is_main():
            shutil.rmtree(work, ignore_errors=True)
    res["settings"] = {k: str(v) for k, v in vars(args).items()}
    if args.json and dist.is_main():
        args.json.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    dist.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

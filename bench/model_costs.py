"""Measure what the tiny presets cost on this machine; the numbers in docs/models.md come from this script.

    python bench/model_costs.py                      # parameters, generation, forward+backward
    python bench/model_costs.py --sft                # + SFT wall-clock to the accuracy band (tiny)
    python bench/model_costs.py --threads 1 2 --json out.json

Generation: sampled (T=1, top-k off), KV cache on, exactly ``--new-tokens`` new tokens per prompt (end-of-turn
suppressed so every row runs to length), prompts = one 64×64 image + a built-in question + the reference
instruction, left-padded. Forward+backward: the teacher-forced pass of a policy-gradient style loss (token-mean
log-prob of ``--new-tokens`` response tokens after the same prompts), reported per 1,000 response tokens.
The machine is shared: the 1-minute load average is printed beside every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _prompts(n: int, records, policy, instruction):
    from mssr.models import build_prompt

    recs = [records[i % len(records)] for i in range(n)]
    texts = [build_prompt(policy.processor, r.question, len(r.images), instruction) for r in recs]
    images = [img for r in recs for img in r.images]
    policy.tokenizer.padding_side = "left"
    return policy.processor(text=texts, images=images, padding=True, return_tensors="pt")


def bench_generation(policy, records, batch: int, new_tokens: int, instruction, repeats: int) -> dict:
    inputs = _prompts(batch, records, policy, instruction)
    eos = [policy.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    times = []
    for _ in range(repeats):
        torch.manual_seed(0)
        t = time.perf_counter()
        with torch.no_grad():
            out = policy.model.generate(
                **inputs,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                use_cache=True,
                suppress_tokens=policy.vision_token_ids(),
                eos_token_id=eos,
                pad_token_id=eos[1],
            )
        times.append(time.perf_counter() - t)
        assert out.shape[1] - inputs["input_ids"].shape[1] == new_tokens
    best = min(times)
    return {
        "batch": batch,
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "new_tokens": new_tokens,
        "seconds_best": round(best, 3),
        "seconds_median": round(statistics.median(times), 3),
        "new_tokens_per_s": round(batch * new_tokens / best, 1),
        "load": _load(),
    }


def bench_fwd_bwd(policy, records, batch: int, new_tokens: int, instruction, repeats: int) -> dict:
    from mssr.trainer.sft import response_nll

    inputs = _prompts(batch, records, policy, instruction)
    g = torch.Generator().manual_seed(0)
    vocab = len(policy.tokenizer)
    response = torch.randint(len(policy.special_token_ids()), vocab, (batch, new_tokens), generator=g)
    ids = torch.cat([inputs["input_ids"], response], 1)
    labels = torch.cat([torch.full_like(inputs["input_ids"], -100), response], 1)
    b = {
        "input_ids": ids,
        "attention_mask": torch.cat([inputs["attention_mask"], torch.ones_like(response)], 1),
        "mm_token_type_ids": torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(response)], 1),
        "pixel_values": inputs["pixel_values"],
        "image_grid_thw": inputs["image_grid_thw"],
        "labels": labels,
    }
    model = policy.model
    model.train()
    times = []
    for _ in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        t = time.perf_counter()
        loss, n = response_nll(model, b)
        loss.backward()
        times.append(time.perf_counter() - t)
    model.eval()
    best = min(times[1:])  # the first pass warms allocator and caches
    return {
        "batch": batch,
        "seq_len": int(ids.shape[1]),
        "response_tokens": n,
        "seconds_best": round(best, 3),
        "seconds_median": round(statistics.median(times[1:]), 3),
        "seconds_per_1k_response_tokens": round(best / n * 1000, 3),
        "load": _load(),
    }


def bench_sft(threads: int, cache_dir: Path) -> dict:
    from mssr.trainer.sft import SFTConfig, read_metrics, run_sft

    cfg = SFTConfig(cache_dir=str(cache_dir), threads=threads, progress=False)
    t = time.perf_counter()
    run_dir = run_sft(cfg, force=True)
    first = time.perf_counter() - t
    t = time.perf_counter()
    run_sft(cfg)
    second = time.perf_counter() - t
    m = read_metrics(run_dir)
    dev = m["dev"] or {}
    return {
        "threads": threads,
        "first_call_s": round(first, 1),
        "cached_call_s": round(second, 3),
        "steps": m["steps"],
        "train_wall_s": m["wall_s"],
        "prep_s": m["prep_s"],
        "dev_accuracy": dev.get("accuracy"),
        "dev_format_rate": dev.get("format_rate"),
        "sampled_token_entropy": dev.get("sampled_token_entropy"),
        "full_entropy": dev.get("full_entropy"),
        "checks": [(c["step"], c["elapsed_s"], c["accuracy"]) for c in m["checks"]],
        "load": _load(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "small", "base"])
    ap.add_argument("--threads", nargs="+", type=int, default=[2])
    ap.add_argument("--batches", nargs="+", type=int, default=[32, 128])
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-instruction", action="store_true", help="prompts without the reference instruction")
    ap.add_argument("--sft", action="store_true", help="also time `mssr sft` (tiny) to the accuracy band")
    ap.add_argument("--json", type=Path, default=None, help="write all results here")
    args = ap.parse_args(argv)

    from mssr.data import load_records
    from mssr.data.builtin import generate_dataset
    from mssr.models import DEFAULT_INSTRUCTION, build_tiny_policy

    instruction = None if args.no_instruction else DEFAULT_INSTRUCTION
    tmp = Path(tempfile.mkdtemp(prefix="mssr-costs-"))
    generate_dataset(tmp / "data", n_train=128, n_val=0, n_test=0, seed=123)
    records = load_records(tmp / "data", "train")
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "load_at_start": _load(),
        },
        "presets": {},
        "sft": [],
    }
    for name in args.presets:
        policy = build_tiny_policy(name)
        entry = {
            "parameters": policy.num_parameters(),
            "vision_parameters": sum(p.numel() for p in policy.model.model.visual.parameters()),
            "vocab": len(policy.tokenizer),
            "runs": [],
        }
        for threads in args.threads:
            torch.set_num_threads(threads)
            run = {"threads": threads, "generation": [], "fwd_bwd": None}
            for b in args.batches:
                run["generation"].append(
                    bench_generation(policy, records, b, args.new_tokens, instruction, args.repeats)
                )
                print(f"{name} threads={threads} gen batch {b}: {run['generation'][-1]}", file=sys.stderr)
            run["fwd_bwd"] = bench_fwd_bwd(
                policy, records, args.train_batch, args.new_tokens, instruction, args.repeats
            )
            print(f"{name} threads={threads} fwd+bwd: {run['fwd_bwd']}", file=sys.stderr)
            entry["runs"].append(run)
        results["presets"][name] = entry
    if args.sft:
        for threads in args.threads:
            results["sft"].append(bench_sft(threads, tmp / f"cache-{threads}"))
            print(f"sft threads={threads}: {results['sft'][-1]}", file=sys.stderr)
    results["machine"]["load_at_end"] = _load()

    print("| preset | params | threads | gen tok/s @32 | gen tok/s @128 | fwd+bwd s / 1k resp tok | load |")
    print("|---|---|---|---|---|---|---|")
    for name, e in results["presets"].items():
        for run in e["runs"]:
            gen = {g["batch"]: g["new_tokens_per_s"] for g in run["generation"]}
            print(
                f"| {name} | {e['parameters'] / 1e6:.2f}M | {run['threads']} | {gen.get(32, '-')} | "
                f"{gen.get(128, '-')} | {run['fwd_bwd']['seconds_per_1k_response_tokens']} | "
                f"{run['fwd_bwd']['load']} |"
            )
    for s in results["sft"]:
        print(
            f"SFT tiny, {s['threads']} threads: {s['steps']} steps, {s['first_call_s']} s to dev accuracy "
            f"{s['dev_accuracy']} (cached call {s['cached_call_s']} s), load {s['load']}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

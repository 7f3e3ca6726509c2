"""Throughput of the rollout layer on the tiny presets (not a test; numbers for docs/rollout.md).

    .venv/bin/python bench/rollout_throughput.py [--preset tiny] [--threads 1] [--rows 32] [--new 64]

Measures `HFRolloutEngine.generate` (tokens/s), the no-grad `compute_logprobs` pass (sampled and full
entropy), one training forward+backward, and the effect of `logits_to_keep` on a Qwen-sized vocabulary.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from PIL import Image

from mssr.models import DEFAULT_INSTRUCTION, build_prompt, build_tiny_policy
from mssr.models.presets import get_preset, make_config
from mssr.rollout import HFRolloutEngine, PromptInput, compute_logprobs, response_logits


def _timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    policy = build_tiny_policy(args.preset, tokenizer_corpus=["What color is the square?"], seed=0)
    model, processor = policy.model, policy.processor
    colors = [(220, 30, 30), (30, 200, 40), (20, 20, 230), (240, 220, 20)]
    prompts = [
        PromptInput(
            f"p{i}",
            build_prompt(processor, "What color is the large square?", 1, DEFAULT_INSTRUCTION),
            [Image.new("RGB", (64, 64), colors[i % 4])],
        )
        for i in range(args.rows)
    ]
    engine = HFRolloutEngine(model, processor)
    gen_s, batch = _timed(lambda: engine.generate(prompts, max_new_tokens=args.new, seed=0), args.repeats)
    tokens = int(batch.response_mask.sum())
    print(
        f"preset={args.preset} params={policy.num_parameters() / 1e6:.2f}M threads={args.threads} "
        f"rows={args.rows} prompt_len={batch.prompt_length} new={args.new}"
    )
    print(f"generate: {gen_s:.3f} s, {tokens} response tokens, {tokens / gen_s:,.0f} tok/s")
    for mode in ("sampled", "full"):
        s, _ = _timed(
            lambda m=mode: compute_logprobs(model, batch, entropy=m, micro_batch_size=16), args.repeats
        )
        print(f"compute_logprobs(no grad, entropy={mode}, mb=16): {s:.3f} s, {tokens / s:,.0f} tok/s")

    train_model = copy.deepcopy(model).train()

    def train_step() -> None:
        for start in range(0, len(batch), 16):
            mb = batch.select(range(start, min(start + 16, len(batch))))
            out = compute_logprobs(train_model, mb, requires_grad=True, entropy="sampled")
            loss = -(out.logprobs * mb.response_mask).sum() / mb.response_mask.sum()
            loss.backward()

    s, _ = _timed(train_step, args.repeats)
    print(f"training forward+backward over the batch (mb=16): {s:.3f} s")

    # logits_to_keep on a Qwen-sized vocabulary: the LM head over prompt positions is skipped.
    ids = policy.special_token_ids()
    big = type(model)(make_config(get_preset(args.preset), token_ids=ids, vocab_size=151_936)).eval()
    mb = batch.select(range(min(16, len(batch))))
    with torch.no_grad():
        for keep in (True, False):
            s, _ = _timed(lambda k=keep: response_logits(big, mb, use_logits_to_keep=k), args.repeats)
            print(f"vocab=151936, 16 rows, response_logits(use_logits_to_keep={keep}): {s:.3f} s")


if __name__ == "__main__":
    main()

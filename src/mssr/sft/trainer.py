"""The SFT loop: AdamW on the response-only loss, linear warm-up then cosine decay, a sampled dev check every
``eval_every`` steps that may stop training early, then the test report."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from mssr.environment import describe as describe_environment
from mssr.models import Policy, build_tiny_policy
from mssr.progress import Progress
from mssr.sft.config import SFTConfig
from mssr.sft.data import (
    collate,
    encode_examples,
    load_splits,
    pad_token_id,
    response_nll,
    tokenizer_corpus,
)
from mssr.sft.evaluate import evaluate_sampled


def lr_at(step: int, cfg: SFTConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = (step - cfg.warmup_steps) / max(cfg.max_steps - cfg.warmup_steps, 1)
    return cfg.lr * (
        cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
    )


def _evaluate(policy: Policy, records: Any, cfg: SFTConfig, *, seed: int) -> dict[str, Any]:
    return evaluate_sampled(
        policy,
        records,
        instruction=cfg.instruction,
        seed=seed,
        max_new_tokens=cfg.eval_max_new_tokens,
        batch_size=cfg.eval_batch_size,
    )


def _init_policy(cfg: SFTConfig, image_size: int, init_dir: Path | None) -> Policy:
    """Curriculum: the base of the ``init_sft`` stage (``init_dir``: its finished run, which
    :func:`mssr.sft.cache.run_sft` trains first if not cached), the same preset at the same image size."""
    from mssr.models import load_policy

    if init_dir is None:
        raise ValueError(f"init_sft {cfg.init_sft}: the first stage's run directory was not given")
    init = cfg.init_config()
    if init.preset != cfg.preset:
        raise ValueError(f"init_sft {cfg.init_sft}: preset {init.preset!r}, this stage {cfg.preset!r}")
    init_size = int(init.data.get("image_size", 64)) if init.data_dir is None else 64
    if init_size != image_size:
        raise ValueError(f"init_sft {cfg.init_sft}: image size {init_size}, this stage {image_size}")
    policy = load_policy(init_dir / "policy")
    policy.model.float()
    return policy


def train_sft(cfg: SFTConfig, out_dir: Path, init_dir: Path | None = None) -> dict[str, Any]:
    """Train and write the policy plus logs into ``out_dir`` (which must not hold a finished run); a curriculum
    stage (``init_sft``) starts from ``init_dir``, its first stage's finished run."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    data_dir, train, dev, test = load_splits(cfg)
    if not train:
        raise ValueError(f"{data_dir}: the train split is empty")
    image_size = int(cfg.data.get("image_size", 64)) if cfg.data_dir is None else 64
    if cfg.init_sft is None:
        policy = build_tiny_policy(
            cfg.preset,
            tokenizer_corpus=tokenizer_corpus(cfg, train),
            image_size=image_size,
            seed=cfg.init_seed,
        )
    else:
        policy = _init_policy(cfg, image_size, init_dir)
    examples = encode_examples(policy, train, cfg.instruction)
    pad_id = pad_token_id(policy)
    model = policy.model
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    order: list[int] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "loss_log.jsonl"
    checks: list[dict[str, Any]] = []
    n_steps = cfg.max_steps if cfg.stop_step is None else cfg.stop_step  # the schedule still spans max_steps
    stopped_at = n_steps
    prep_s = time.perf_counter() - t0
    bar = Progress(n_steps, enabled=cfg.progress, description=f"SFT {cfg.preset}", every_s=10.0)
    try:
        with log_path.open("w", encoding="utf-8") as log:
            for step in range(n_steps):
                if len(order) < cfg.batch_size:
                    order.extend(torch.randperm(len(examples), generator=gen).tolist())
                idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
                batch = collate([examples[i] for i in idx], pad_id)
                lr = lr_at(step, cfg)
                for g in opt.param_groups:
                    g["lr"] = lr
                loss, n_tokens = response_nll(model, batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
                opt.step()
                rec = {
                    "step": step + 1,
                    "loss": loss.item(),
                    "lr": lr,
                    "grad_norm": grad_norm,
                    "tokens": n_tokens,
                    "elapsed_s": round(time.perf_counter() - t0, 3),
                }
                log.write(json.dumps(rec) + "\n")
                if (step + 1) % 10 == 0:
                    log.flush()
                bar.show(step + 1, f"loss {rec['loss']:.3f}")
                if dev and cfg.eval_every and (step + 1) % cfg.eval_every == 0:
                    m = _evaluate(policy, dev, cfg, seed=cfg.seed + step + 1)
                    m = {"step": step + 1, "elapsed_s": round(time.perf_counter() - t0, 3), **m}
                    checks.append(m)
                    log.write(json.dumps({"eval": m}) + "\n")
                    log.flush()
                    bar.show(step + 1, f"loss {rec['loss']:.3f} · dev acc {m['accuracy']:.2f}")
                    if cfg.stop_accuracy is not None and m["accuracy"] >= cfg.stop_accuracy:
                        stopped_at = step + 1
                        break
    finally:
        bar.close()
    train_s = time.perf_counter() - t0
    model.eval()
    policy.info.update({"sft": {"steps": stopped_at, "cache_key": cfg.cache_key()}})
    policy.save(out_dir / "policy")
    final = checks[-1] if checks and checks[-1]["step"] == stopped_at else None
    if final is None and dev:
        final = {"step": stopped_at, **_evaluate(policy, dev, cfg, seed=cfg.seed + stopped_at)}
    report = _evaluate(policy, test, cfg, seed=cfg.seed + 10**6) if test else None
    return {
        "steps": stopped_at,
        "stopped_early": stopped_at < cfg.max_steps,
        "wall_s": round(time.perf_counter() - t0, 2),
        "train_s": round(train_s, 2),
        "prep_s": round(prep_s, 2),
        "threads": torch.get_num_threads(),
        "environment": describe_environment(),
        "n_train": len(train),
        "n_dev": len(dev),
        "n_test": len(test),
        "data_dir": str(data_dir),
        "num_parameters": policy.num_parameters(),
        "dev": final,
        "test": report,
        "checks": checks,
    }

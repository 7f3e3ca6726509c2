"""The no-gradient passes over the step's responses: old log-probs and the shaping entropy, reference
log-probs, and SPO's policy drift; their micro-batch plan under ``optim.micro_batch_tokens``."""

from __future__ import annotations

import math

import torch

from mssr.algos import sampled_token_entropy
from mssr.algos.objective import truncated_is_weights
from mssr.models.lora import adapters_disabled
from mssr.rollout.logprobs import compute_logprobs
from mssr.rollout.micro_batches import plan_micro_batches, row_lengths
from mssr.trainer import distributed as dist
from mssr.trainer.step_data import Parts, StepData


def compute_old_logprobs(tr: Parts, d: StepData) -> dict[str, float]:
    """Old log-probs, the shaping entropy and the sampler/trainer comparison (docs/rollout.md "Old
    log-probs"). From the sampler (``tr.old_logprobs_from == "sampler"``, resolved once at set-up) no forward pass is run unless the full-vocabulary
    entropy is needed; otherwise the trainer's teacher-forced pass gives them. Where both exist the mismatch
    is logged (``rollout/logprob_diff_{mean,max}``), and with ``rollout.tis_cap`` the truncated
    importance weights min(π_old/π_sampler, C) are kept for the loss (``rollout/tis_*``)."""
    mode = "full" if tr.spec.shaping and tr.cfg.algorithm.shaping.entropy == "full" else "sampled"
    mask = d.batch.response_mask.float()
    lp = d.batch.rollout_logprobs
    from_sampler = tr.old_logprobs_from == "sampler"
    if from_sampler and lp is None:
        raise RuntimeError("rollout.old_logprobs=sampler: the engine returned no log-probs")
    sampler = lp.cpu().float() * mask if lp is not None else None
    trainer, full = None, None
    if not (from_sampler and mode == "sampled"):
        with torch.no_grad(), tr.strategy.gathered(tr.model):
            out = compute_logprobs(
                tr.model,
                d.batch,
                micro_batch_size=tr.cfg.optim.micro_batch_size,
                entropy=mode,
                share_prompts=tr.cfg.rollout.share_prompts,
                micro_batches=pass_plan(tr, d),
            )
        trainer, full = out.logprobs.cpu().float(), out.entropy
    d.old_logprobs = sampler if from_sampler else trainer
    d.sampled_entropy = sampled_token_entropy(d.old_logprobs) * mask
    d.entropy = full.cpu() if full is not None else d.sampled_entropy
    if sampler is None or trainer is None or (tr.engine.shares_weights and tr.cfg.rollout.tis_cap is None):
        return {}
    sel = d.batch.response_mask > 0
    delta = (trainer - sampler)[sel].double()  # log(π_trainer / π_sampler) per response token
    stats = [delta.abs().sum(), torch.tensor(float(delta.numel()), dtype=torch.float64)]
    top = [delta.abs().max() if delta.numel() else torch.zeros((), dtype=torch.float64)]
    cap = tr.cfg.rollout.tis_cap
    if cap is not None:
        d.is_weights = truncated_is_weights(trainer, sampler, mask, cap)
        w = d.is_weights[sel].double()
        stats += [w.sum(), (delta > math.log(cap)).double().sum()]
        top += [w.max() if w.numel() else torch.zeros((), dtype=torch.float64)]
    stats = dist.all_reduce_sum(torch.stack(stats))
    top = dist.all_reduce_max(torch.stack(top))
    n = stats[1].clamp(min=1)
    out_metrics = {
        "rollout/logprob_diff_mean": float(stats[0] / n),
        "rollout/logprob_diff_max": float(top[0]),
    }
    if cap is not None:
        out_metrics.update(
            {
                "rollout/tis_weight_mean": float(stats[2] / n),
                "rollout/tis_weight_max": float(top[1]),
                "rollout/tis_capped_frac": float(stats[3] / n),
            }
        )
    return out_metrics


def compute_ref_logprobs(tr: Parts, d: StepData) -> None:
    """Log-probs under the starting policy: the frozen copy, or under LoRA the policy with its adapters
    disabled (no second copy of the weights)."""
    if not tr.needs_ref:
        return
    model = tr.ref_model if tr.ref_model is not None else tr.model
    with torch.no_grad(), tr.strategy.gathered(model), adapters_disabled(model):
        d.ref_logprobs = compute_logprobs(
            model,
            d.batch,
            micro_batch_size=tr.cfg.optim.micro_batch_size,
            share_prompts=tr.cfg.rollout.share_prompts,
            micro_batches=pass_plan(tr, d),
        ).logprobs.cpu()


def compute_policy_drift(tr: Parts, d: StepData) -> None:
    """SPO's D(x) for the per-prompt ρ: each prompt's previously stored response re-scored by the policy
    that sampled this step (before this step's update), against its log-probs when it was generated; then
    this step's responses replace the stored ones. Stored responses reuse this step's prompt encoding."""
    if tr.response_store is None:
        return
    from mssr.algos import policy_drift

    keys = list(d.batch.keys)
    drift = torch.full((len(keys),), float("nan"), dtype=torch.float64)
    rows = [j for j, k in enumerate(keys) if tr.response_store.get(k) is not None]
    if rows:
        sub = d.batch.select(rows)
        t = sub.response_ids.shape[1]
        stored = [tr.response_store.get(keys[j]) for j in rows]
        width = max(t, max(int(ids.numel()) for ids, _ in stored))
        ids = torch.full((len(rows), width), int(sub.pad_token_id), dtype=torch.long)
        mask = torch.zeros(len(rows), width)
        for i, (sid, _) in enumerate(stored):
            ids[i, : sid.numel()] = sid
            mask[i, : sid.numel()] = 1
        with torch.no_grad(), tr.strategy.gathered(tr.model):
            now = compute_logprobs(
                tr.model,
                sub.with_responses(ids, mask),
                micro_batch_size=tr.cfg.optim.micro_batch_size,
            ).logprobs.cpu()
        for i, j in enumerate(rows):
            then = stored[i][1]
            drift[j] = policy_drift(then, now[i, : then.numel()].double())
    for j, k in enumerate(keys):
        if d.valid[j]:
            m = d.batch.response_mask[j] > 0
            tr.response_store.put(k, d.batch.response_ids[j][m], d.old_logprobs[j][m])
    d.drift = torch.cat([p for p in dist.all_gather_objects(drift)])


def pass_plan(tr: Parts, d: StepData) -> list[list[int]] | None:
    """Micro-batches of a no-gradient pass (old / reference log-probs) under ``optim.micro_batch_tokens``
    (None: row-count batching), padded to the same count on every rank where forwards must be in lockstep."""
    o = tr.cfg.optim
    if o.micro_batch_tokens is None:
        return None
    if d.pass_plan is not None:  # once per step: the old-log-prob and reference passes share it
        return d.pass_plan
    lengths = row_lengths(d.batch)
    plan = plan_micro_batches(
        range(len(d.rewards)), *lengths, max_rows=o.micro_batch_size, max_tokens=o.micro_batch_tokens
    )
    if tr.strategy.lockstep_forwards:
        n = int(dist.all_reduce_max(torch.tensor([len(plan)]))[0])
        plan += [padding_rows(tr, lengths, len(d.rewards))] * (n - len(plan))
    d.pass_plan = plan
    return plan


def padding_rows(tr: Parts, lengths: tuple[list[int], list[int]], n: int) -> list[int]:
    """The rows of a lockstep padding micro-batch (loss weight 0): row-count batching keeps its old
    micro-batch of ``micro_batch_size`` rows; under a token budget, the shortest row."""
    if tr.cfg.optim.micro_batch_tokens is None:
        return list(range(min(tr.cfg.optim.micro_batch_size, n)))
    p, r = lengths
    return [min(range(n), key=lambda i: p[i] + r[i])]

"""Choose the step's prompts, generate their responses, score them, and gather every rank's rows."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import torch

from mssr.algos import spo_priority_weights
from mssr.rewards import score_batch
from mssr.rollout.concat import concat_batches
from mssr.trainer import distributed as dist
from mssr.trainer.session import RUN_LOG, runlog
from mssr.trainer.step_data import Gathered, Parts, StepData, step_seed

log = logging.getLogger("mssr.train")


def sample_prompts(tr: Parts, step: int) -> list[int]:
    weights = None
    if tr.cfg.algorithm.sampler.kind == "prioritized":
        p_hat = (
            tr.tracker.baseline([p.key for p in tr.train_prompts])
            if tr.tracker
            else torch.full((len(tr.train_prompts),), 0.5)
        )
        weights = spo_priority_weights(p_hat, eps=tr.cfg.algorithm.sampler.priority_eps)
    return tr.sampler.sample(tr.prompts_per_step, weights)


def generate(tr: Parts, prompts: list[Any], n: int, step: int, global_offset: int) -> Any:
    """Generate in chunks of ``gen_batch_size`` rollouts, each seeded by (step, global index of its first
    prompt): samples then do not depend on how the prompts are split over ranks or resumed runs."""
    r = tr.cfg.rollout
    per = max(1, r.gen_batch_size // n)
    parts = []
    # eval mode: with gradient checkpointing, transformers turns the KV cache off in training mode
    tr.model.eval()
    try:
        with tr.strategy.gathered(tr.model) if tr.engine.shares_weights else contextlib.nullcontext():
            parts = _generate_chunks(tr, prompts, n, step, global_offset, per)
    finally:
        tr.model.train()
    return concat_batches(parts)


def _generate_chunks(tr: Parts, prompts: list[Any], n: int, step: int, global_offset: int, per: int) -> list:
    r = tr.cfg.rollout
    parts = []
    for start in range(0, len(prompts), per):
        parts.append(
            tr.engine.generate(
                prompts[start : start + per],
                n=n,
                temperature=r.temperature,
                top_p=r.top_p,
                top_k=0,
                max_new_tokens=r.max_new_tokens,
                seed=step_seed(tr.cfg.seed, step, 1 + global_offset + start),
                return_logprobs=tr.want_sampler_logprobs,
            )
        )
    return parts


def rollout(tr: Parts, step: int, global_idx: list[int]) -> StepData:
    local_idx = dist.shard(global_idx)
    batch = generate(
        tr,
        [tr.train_prompts[i] for i in local_idx],
        tr.spec.rollouts_per_prompt,
        step,
        dist.rank() * len(local_idx),
    )
    prompt_ids = torch.tensor([local_idx[j] for j in batch.prompt_index.tolist()], dtype=torch.long)
    records = [tr.train_records[i] for i in prompt_ids.tolist()]
    empty = torch.zeros(len(batch))
    return StepData(batch, records, prompt_ids, empty, empty.bool(), batch.response_mask.float())


def score_responses(
    tr: Parts, responses: list[str], records: list[Any]
) -> tuple[torch.Tensor, torch.Tensor, Any]:
    rc = tr.cfg.reward
    res = score_batch(
        tr.reward,
        responses,
        [r.to_columns() for r in records],
        timeout_s=rc.timeout_s,
        num_workers=rc.num_workers,
        binarize_threshold=rc.binarize_threshold,
        require_unit_interval=tr.spec.use_tracker,
        max_response_chars=rc.max_response_chars,
    )
    valid = torch.tensor([s is not None for s in res.scores], dtype=torch.bool)
    rewards = torch.tensor([float(s) if s is not None else 0.0 for s in res.scores], dtype=torch.float32)
    tr.counters["reward_errors"] += res.n_errors
    tr.counters["reward_timeouts"] += res.n_timeouts
    _report_reward_failures(tr, res, len(responses))
    return rewards, valid, res


def _report_reward_failures(tr: Parts, res: Any, n: int) -> None:
    """The first failure of each kind: one console line, and its traceback in the run's log file."""
    for kind, (msg, tb) in res.first_failures.items():
        if kind in tr.reward_failure_kinds:
            continue
        tr.reward_failure_kinds.add(kind)
        if not dist.is_main():
            continue
        log.warning(
            "reward failure at step %d (%d errors, %d timeouts of %d samples): %s — first of its kind; "
            "its traceback is in %s",
            tr.step,
            res.n_errors,
            res.n_timeouts,
            n,
            msg,
            tr.run_dir / RUN_LOG,
        )
        runlog.error("reward failure at step %d: %s\n%s", tr.step, msg, tb.rstrip() or "(no traceback)")


def score(tr: Parts, d: StepData) -> dict[str, float]:
    d.rewards, d.valid, res = score_responses(tr, d.batch.response_text, d.records)
    mask = d.batch.response_mask.float() * d.valid[:, None].float()
    if tr.cfg.rollout.mask_truncated:
        mask = mask * (~d.batch.truncated)[:, None].float()
    d.loss_mask = mask
    out = {
        f"reward/{k}": float(sum(v for v in vals if v is not None) / max(1, sum(v is not None for v in vals)))
        for k, vals in res.extras.items()
    }
    out["reward/errors"] = float(res.n_errors)
    out["reward/timeouts"] = float(res.n_timeouts)
    return out


def gather(tr: Parts, d: StepData) -> None:
    """Rewards, validity, keys, groups and loss lengths of every rank's rows, so that advantage statistics
    and the tracker are global."""
    d.gathered = Gathered(
        keys=[k for part in dist.all_gather_objects(list(d.batch.keys)) for k in part],
        rewards=dist.all_gather_cat(d.rewards),
        valid=dist.all_gather_cat(d.valid),
        groups=dist.all_gather_cat(d.prompt_ids),
        lengths=dist.all_gather_cat(d.loss_mask.sum(-1)),
    )

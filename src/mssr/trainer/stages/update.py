"""The policy update: one pass over the step's rows in mini-batches of whole prompts, each split into
micro-batches whose gradients accumulate (docs/method.md §5)."""

from __future__ import annotations

import math
import warnings

import torch

from mssr.algos.objective import rl_objective
from mssr.rollout.logprobs import compute_logprobs
from mssr.rollout.micro_batches import plan_micro_batches, row_lengths
from mssr.trainer import distributed as dist
from mssr.trainer.stages.logprobs import padding_rows
from mssr.trainer.step_data import Parts, StepData, step_seed

# per-token statistics of the policy loss, averaged over the step's tokens (the loss terms are summed)
TOKEN_WEIGHTED = ("actor/pg_clipfrac", "actor/pg_clipfrac_lower", "actor/ppo_kl")


def mini_batch_plan(n_local: int, world: int, rank: int, n_updates: int, seed: int) -> list[list[int]]:
    """This rank's prompts (local indices) in each of ``n_updates`` mini-batches: one global shuffle of the step's
    ``n_local × world`` prompts, identical on every rank, dealt round-robin into mini-batches; every rank takes
    its own prompts of each, so mini-batches do not depend on the world size."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n_local * world, generator=g).tolist()
    first = rank * n_local
    return [
        [p - first for p in order[i::n_updates] if first <= p < first + n_local] for i in range(n_updates)
    ]


def _mini_batch_grads(
    tr: Parts,
    d: StepData,
    rows: list[int],
    lengths: tuple[list[int], list[int]],
    sums: dict[str, float],
    weights: dict[str, float],
) -> tuple[float, float, dict[str, float]]:
    """Forward and backward every micro-batch of one mini-batch (``rows``), gradients accumulating; the loss
    terms are added to ``sums`` (token-weighted ones with their ``weights``). Returns the mini-batch's summed
    loss, its token-weighted k1 KL(π_old ‖ π_θ) before the update, and its global normalisers."""
    o = tr.cfg.optim
    mask = d.loss_mask[rows]
    counts = dist.all_reduce_sum(torch.tensor([mask.sum(), (mask.sum(-1) > 0).sum()], dtype=torch.float64))
    norm = dict(global_tokens=counts[0].item(), global_seqs=counts[1].item())
    micros = plan_micro_batches(rows, *lengths, max_rows=o.micro_batch_size, max_tokens=o.micro_batch_tokens)
    n_micro = len(micros)
    if tr.strategy.lockstep_forwards:  # same number of forwards on every rank (FSDP collectives)
        n_micro = int(dist.all_reduce_max(torch.tensor([n_micro]))[0])
    tr.optimizer.zero_grad(set_to_none=True)
    total = 0.0
    kl_num = 0.0  # token-weighted k1 KL(π_old ‖ π_θ) of this mini-batch, before its update
    for i in range(n_micro):
        padding = i >= len(micros)
        micro = micros[i] if not padding else padding_rows(tr, lengths, len(d.rewards))
        loss, terms = micro_loss(tr, d, micro, norm, padding=padding)
        loss.backward()
        if padding:
            continue
        total += float(loss.detach())
        w = float(d.loss_mask[micro].sum())
        kl_num += terms.get("actor/ppo_kl", 0.0) * w
        for k, v in terms.items():
            if k in TOKEN_WEIGHTED:
                sums[k] = sums.get(k, 0.0) + v * w
                weights[k] = weights.get(k, 0.0) + w
            else:  # loss terms are partial sums of the mini-batch loss: add them up
                sums[k] = sums.get(k, 0.0) + v
    return total, kl_num, norm


def update_policy(tr: Parts, step: int, d: StepData) -> dict[str, float]:
    """One pass over the rollout batch in mini-batches of whole prompts (docs/method.md §5)."""
    o = tr.cfg.optim
    n = tr.spec.rollouts_per_prompt
    n_local = len(d.rewards) // n
    n_updates = o.updates_per_step or max(1, math.ceil(tr.prompts_per_step / o.mini_batch_prompts))
    n_updates = min(n_updates, n_local * dist.world_size())
    chunks = mini_batch_plan(
        n_local, dist.world_size(), dist.rank(), n_updates, step_seed(tr.cfg.seed, step, 77)
    )
    sums: dict[str, float] = {}
    weights: dict[str, float] = {}
    grad_norms = []
    measured = taken = 0  # mini-batches forwarded / updated (target-KL early stopping may end the pass)
    kl_stopped = False
    # the lr this step's updates use (logged as actor/lr; scheduler.step() below sets the next step's)
    lr_used = tr.scheduler.get_last_lr()[0]
    lengths = row_lengths(d.batch)
    tr.model.train()
    for prompt_chunk in chunks:
        rows = sorted(r for p in prompt_chunk for r in range(p * n, (p + 1) * n))
        total, kl_num, norm = _mini_batch_grads(tr, d, rows, lengths, sums, weights)
        measured += 1
        if o.target_kl is not None:  # PPO's early stopping: every rank sees the same global KL
            kl = float(dist.all_reduce_sum(torch.tensor([kl_num], dtype=torch.float64))[0])
            if kl / max(norm["global_tokens"], 1.0) > 1.5 * o.target_kl:
                tr.optimizer.zero_grad(set_to_none=True)
                kl_stopped = True
                break
        tr.strategy.reduce_grads(tr.params)
        gn = tr.strategy.clip_grad_norm(tr.params, tr.grad_clip)
        total_all = float(dist.all_reduce_sum(torch.tensor([total], dtype=torch.float64))[0])
        if not (math.isfinite(total_all) and torch.isfinite(gn)):
            tr.optimizer.zero_grad(set_to_none=True)
            tr.counters["skipped_updates"] += 1
        else:
            tr.optimizer.step()
        taken += 1
        grad_norms.append(float(gn))
    with warnings.catch_warnings():  # every update of the step may have been skipped (non-finite)
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
        tr.scheduler.step()
    out = {
        k: (v / weights[k] if k in weights else v / measured)
        for k, v in sums.items()
        if not (k in weights and weights[k] == 0)
    }
    out["actor/grad_norm"] = sum(grad_norms) / len(grad_norms) if grad_norms else 0.0
    out["actor/lr"] = lr_used
    out["actor/updates"] = float(taken)
    if o.target_kl is not None:
        out["actor/kl_stopped"] = float(kl_stopped)
    return out


def micro_loss(
    tr: Parts, d: StepData, micro: list[int], norm: dict[str, float], *, padding: bool = False
) -> tuple[torch.Tensor, dict[str, float]]:
    """The objective of rows ``micro`` (forwards in the compute dtype). A padding micro-batch (a rank with
    fewer rows than another under FSDP) runs the same forwards with an empty mask and weight 0."""
    a = tr.cfg.algorithm
    # under FSDP every micro-batch must run the same forwards on every rank: one plain forward each
    share = tr.cfg.rollout.share_prompts and not tr.strategy.lockstep_forwards
    mb = d.batch.select(micro).to(tr.device)
    m = d.loss_mask[micro].to(tr.device)
    if padding:
        m = torch.zeros_like(m)
    with tr.strategy.autocast():
        lp = compute_logprobs(
            tr.model, mb, entropy="none", requires_grad=True, share_prompts=share, device=tr.device
        ).logprobs
        lp_text = None
        if tr.spec.crossmodal_coef > 0:
            lp_text = compute_logprobs(
                tr.model,
                mb.text_only(),
                entropy="none",
                requires_grad=True,
                share_prompts=share,
                device=tr.device,
            ).logprobs
    out = rl_objective(
        lp,
        d.old_logprobs[micro].to(tr.device),
        d.advantages[micro].to(tr.device),
        m,
        tr.objective_weights,
        ref_logprob=d.ref_logprobs[micro].to(tr.device) if tr.spec.kl_coef > 0 else None,
        is_weights=d.is_weights[micro].to(tr.device) if d.is_weights is not None else None,
        logprob_text=lp_text,
        agg_mode=a.loss.agg_mode,
        horizon=float(tr.cfg.rollout.max_new_tokens),
        **norm,
    )
    loss = out.loss * 0.0 if padding else out.loss
    return loss, out.metrics

"""The value tracker's initialisation (docs/method.md §1), the advantages with entropy shaping, and the
tracker's update after the step."""

from __future__ import annotations

import time
from typing import Any

import torch

from mssr import algos
from mssr.algos import per_sample_kl, shape_advantages
from mssr.trainer import distributed as dist
from mssr.trainer.stages.generation import generate, score_responses
from mssr.trainer.step_data import Parts, StepData


def initialize_tracker(tr: Parts) -> dict[str, float]:
    """One rollout per training prompt of the starting policy (MSSR), or n₀ (SPO), before step 1."""
    a = tr.cfg.algorithm
    if tr.tracker is None or a.tracker.init == "none" or tr.tracker_initialized:
        return {}
    t0 = time.perf_counter()
    n = 1 if a.tracker.init == "online" else a.tracker.spo_init_rollouts
    all_idx = list(range(len(tr.train_prompts)))
    pad = (-len(all_idx)) % dist.world_size()
    local = dist.shard(all_idx + all_idx[:pad])
    outcomes: dict[str, list[float]] = {}
    totals = torch.zeros(3, dtype=torch.float64)  # reward errors, timeouts, generated response tokens
    chunk = max(1, tr.cfg.rollout.gen_batch_size // n) * 8
    for start in range(0, len(local), chunk):
        idx = local[start : start + chunk]
        batch = generate(tr, [tr.train_prompts[i] for i in idx], n, 0, dist.rank() * len(local) + start)
        recs = [tr.train_records[idx[j]] for j in batch.prompt_index.tolist()]
        rewards, valid, res = score_responses(tr, batch.response_text, recs)
        totals += torch.tensor(
            [res.n_errors, res.n_timeouts, float(batch.response_mask.sum())], dtype=torch.float64
        )
        for j, key in enumerate(batch.keys):
            if valid[j]:
                outcomes.setdefault(key, []).append(float(rewards[j]))
    merged: dict[str, list[float]] = {}
    for part in dist.all_gather_objects(outcomes):
        for k, v in part.items():
            merged.setdefault(k, []).extend(v)
    if a.tracker.init == "online":
        tr.tracker.init_from_outcomes(merged)
    else:
        thr = a.tracker.reward_threshold
        tr.tracker.init_spo({k: sum(r > thr for r in v) for k, v in merged.items() if len(v) == n}, n0=n)
    tr.counters["init_rollouts"] += len(all_idx) * n
    tr.tracker_initialized = True
    m = tr.tracker.metrics()
    totals = dist.all_reduce_sum(totals)
    tr.counters["init_gen_tokens"] += int(totals[2])
    return {
        "init/rollouts": float(len(all_idx) * n),
        "init/p_hat_mean": m["p_hat_mean"],
        "init/reward_errors": float(totals[0]),
        "init/reward_timeouts": float(totals[1]),
        "init/gen_tokens": float(totals[2]),
        "init/time_s": time.perf_counter() - t0,
    }


def compute_advantages(tr: Parts, d: StepData) -> dict[str, float]:
    """The registry estimator over the gathered valid rows (tracker baselines from before this step's
    update), then entropy shaping of this rank's rows."""
    a, g = tr.cfg.algorithm, d.gathered
    metrics: dict[str, float] = {}
    idx = torch.nonzero(g.valid).flatten()
    scores = torch.zeros(len(g.rewards))
    if len(idx):
        t_max = int(g.lengths.max().item()) if len(g.lengths) else 1
        synth_mask = (torch.arange(max(1, t_max))[None, :] < g.lengths[idx][:, None]).float()
        kwargs: dict[str, Any] = {"group_ids": g.groups[idx], **a.estimator_kwargs()}
        if tr.tracker is not None:
            kwargs["baselines"] = tr.tracker.baseline([g.keys[i] for i in idx.tolist()])
        out = algos.compute_advantages(tr.spec.advantage, g.rewards[idx], synth_mask, **kwargs)
        scores[idx] = out.scores
        metrics.update({f"adv/{k}": v for k, v in out.metrics.items() if k != "n_groups"})
        if "zero_std_frac" in out.metrics:
            metrics["grpo/zero_std_frac"] = out.metrics["zero_std_frac"]
    b = len(d.rewards)  # this rank's rows of the global arrays
    adv = scores[dist.rank() * b : (dist.rank() + 1) * b][:, None] * d.loss_mask
    d.unshaped_advantages = adv
    if tr.spec.shaping:
        shaped = shape_advantages(
            adv,
            d.entropy,
            d.loss_mask,
            alpha=a.shaping.alpha,
            kappa=a.shaping.cap,
            symmetric=a.shaping.symmetric,
        )
        adv = shaped.advantages
        metrics.update({f"mssr/{k}": v for k, v in shaped.metrics.items()})
        if a.shaping.center:  # ψ's mean over every rank's valid tokens, taken off again
            sums = dist.all_reduce_sum(torch.stack([shaped.psi.sum(), d.loss_mask.sum()]).double())
            offset = float(sums[0] / sums[1].clamp(min=1))
            adv = adv - offset * d.loss_mask
            metrics["mssr/psi_center"] = offset
    d.advantages = adv
    return metrics


def update_tracker(tr: Parts, d: StepData) -> dict[str, float]:
    if tr.tracker is None:
        return {}
    g = d.gathered
    kl = None
    if tr.rho_needs == "kl":
        per = per_sample_kl(d.old_logprobs, d.ref_logprobs, d.loss_mask)
        sums = dist.all_reduce_sum(torch.stack([(per * d.valid).sum(), d.valid.float().sum()]).double())
        kl = float(sums[0] / sums[1].clamp(min=1))
    rho = tr.rho(len(g.keys), kl=kl, divergence=d.drift)
    rewards = [float(r) if v else None for r, v in zip(g.rewards.tolist(), g.valid.tolist(), strict=True)]
    tr.tracker.update(g.keys, rewards, rho)
    if dist.is_distributed():
        _check_tracker_consistency(
            tr,
        )
    m = tr.tracker.metrics()
    out = {"mssr/rho": float(rho.mean()), "mssr/p_hat_mean": m["p_hat_mean"], "mssr/neff": m["neff"]}
    if kl is not None:
        out["mssr/kl_rollout_ref"] = kl
        out["mssr/kl_window_mean"] = tr.rho.window_mean
    return out


def _check_tracker_consistency(tr: Parts) -> None:
    """Every rank must hold the same tracker (they see the same gathered rewards); stop loudly if not."""
    import hashlib

    st = tr.tracker.state_dict()
    h = hashlib.sha256(
        repr(st["keys"]).encode() + st["alpha"].numpy().tobytes() + st["beta"].numpy().tobytes()
    )
    digests = dist.all_gather_objects(h.hexdigest())
    if len(set(digests)) != 1:
        raise RuntimeError(f"value trackers diverged across ranks at step {tr.step}: {digests}")

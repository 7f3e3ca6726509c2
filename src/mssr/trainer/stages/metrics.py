"""The step's logged statistics: score, entropy, lengths, exclusions and the advantages' spread."""

from __future__ import annotations

import torch

from mssr.trainer import distributed as dist
from mssr.trainer.step_data import StepData


def step_metrics(d: StepData) -> dict[str, float]:
    g_rewards, g_valid = d.gathered.rewards, d.gathered.valid
    mask = d.loss_mask
    resp = d.batch.response_mask.float()
    tok = dist.all_reduce_sum(
        torch.tensor([(d.sampled_entropy * resp).sum(), resp.sum()], dtype=torch.float64)
    )
    adv_vals = d.advantages[mask > 0]
    lengths = dist.all_gather_cat(resp.sum(-1))
    trunc = dist.all_gather_cat(d.batch.truncated.float())
    v = g_valid
    out = {
        "critic/score/mean": float(g_rewards[v].mean()) if v.any() else 0.0,
        "actor/entropy": float(tok[0] / tok[1].clamp(min=1)),
        "response_length/mean": float(lengths.mean()),
        "response_length/clip_ratio": float(trunc.mean()),
        "train/excluded_frac": float(1 - v.float().mean()),
    }
    if adv_vals.numel():
        out.update(
            {
                "critic/advantages/mean": float(adv_vals.mean()),
                "critic/advantages/std": float(adv_vals.std(unbiased=False)),
                "critic/advantages/min": float(adv_vals.min()),
                "critic/advantages/max": float(adv_vals.max()),
            }
        )
    return out

"""One training step as a short sequence of named stages (docs/architecture.md, "One training step as data").

``sample prompts → rollout → score → old log-probs/entropies → reference log-probs → advantages (+ tracker/ρ)
→ entropy shaping → policy update over mini-batches → tracker update → metrics``. Algorithm choices arrive as
an :class:`~mssr.algos.AlgorithmSpec` in ``tr.spec``; no stage branches on an algorithm's name.
"""

from __future__ import annotations

import torch

from mssr.trainer import distributed as dist
from mssr.trainer.stages.advantages import compute_advantages, update_tracker
from mssr.trainer.stages.generation import gather, rollout, sample_prompts, score
from mssr.trainer.stages.logprobs import compute_old_logprobs, compute_policy_drift, compute_ref_logprobs
from mssr.trainer.stages.metrics import step_metrics
from mssr.trainer.stages.update import update_policy
from mssr.trainer.step_data import Parts, timed


def train_step(tr: Parts, step: int) -> dict[str, float]:
    """Run step ``step``'s stages on the run's parts ``tr``; returns the step's metrics."""
    t: dict[str, float] = {}
    with timed(t, "step"):
        with timed(t, "gen"):
            d = rollout(tr, step, sample_prompts(tr, step))
        if tr.engine.sleeps:
            with timed(t, "sleep"):  # the engine's GPU memory is the trainer's until after the update
                tr.engine.before_update()
        with timed(t, "score"):
            metrics = score(tr, d)
        with timed(t, "logprob"):
            metrics.update(compute_old_logprobs(tr, d))
        with timed(t, "ref"):
            compute_ref_logprobs(tr, d)
            compute_policy_drift(tr, d)
        gather(tr, d)
        metrics.update(compute_advantages(tr, d))
        if tr.shaping_probe is not None and tr.shaping_probe.due(step):
            with timed(t, "probe"):
                metrics.update(tr.shaping_probe(tr, d, d.unshaped_advantages))
        with timed(t, "update"):
            metrics.update(update_policy(tr, step, d))
        if not tr.engine.shares_weights:
            with timed(t, "sync"):  # the engine samples the next step from the updated weights
                tr.engine.after_update(tr.model)
        metrics.update(update_tracker(tr, d))
        metrics.update(step_metrics(d))
    metrics.update({f"timing_s/{k}": v for k, v in t.items()})
    n_roll = len(d.rewards) * dist.world_size()
    tr.counters["rollouts"] += n_roll
    n_tok = dist.all_reduce_sum(d.batch.response_mask.sum().to(torch.float64).reshape(1))
    tr.counters["gen_tokens"] += int(n_tok[0])
    metrics["perf/rollouts_per_s"] = n_roll / t["step"]
    metrics["train/rollouts"] = float(tr.counters["rollouts"])
    metrics["train/init_rollouts"] = float(tr.counters["init_rollouts"])
    # compute accounting: response tokens generated so far, by the steps and by the tracker initialisation
    metrics["train/gen_tokens"] = float(tr.counters["gen_tokens"])
    metrics["train/init_gen_tokens"] = float(tr.counters["init_gen_tokens"])
    metrics["train/skipped_updates"] = float(tr.counters["skipped_updates"])
    return metrics

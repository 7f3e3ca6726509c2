"""The entropy change attributable to entropy shaping, measured (``logging.shaping_probe_every``; off by default).

Every N steps a one-step counterfactual runs from the current weights and optimizer state: one optimizer update
over the whole step batch with the shaped advantages Ã = Â + ψ, then — from the same starting point — one with
the unshaped Â; after each, the mean full-vocabulary entropy of the policy on a fixed probe batch (the response
tokens of the first probed step's first ``rows`` rollouts). Logged: ``probe/entropy`` (before),
``probe/entropy_step_shaped`` and ``probe/entropy_step_unshaped`` (the change each update makes) and
``probe/entropy_psi`` (shaped − unshaped: the part attributable to ψ). The weights, optimizer state and RNG are
restored bit for bit afterwards, so training is unchanged (tested). docs/algorithms.md "What the shaping does
to entropy" derives the expected sign. One process only; the probe batch is not checkpointed (a resumed run
takes a new one).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from mssr.rollout.logprobs import compute_logprobs
from mssr.trainer.stages.update import micro_loss


class ShapingProbe:
    def __init__(self, every: int, rows: int = 16) -> None:
        self.every = every
        self.rows = rows
        self.batch: Any = None

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def _entropy(self, trainer: Any) -> float:
        with torch.no_grad(), trainer.strategy.autocast():
            out = compute_logprobs(
                trainer.model,
                self.batch,
                entropy="full",
                micro_batch_size=trainer.cfg.optim.micro_batch_size,
                device=trainer.device,
            )
        mask = self.batch.response_mask.to(out.entropy.device).float()
        return float((out.entropy.float() * mask).sum() / mask.sum().clamp(min=1))

    def _one_update(self, trainer: Any, d: Any) -> None:
        rows = list(range(len(d.rewards)))
        mask = d.loss_mask
        norm = dict(global_tokens=float(mask.sum()), global_seqs=float((mask.sum(-1) > 0).sum()))
        size = trainer.cfg.optim.micro_batch_size
        trainer.model.train()
        trainer.optimizer.zero_grad(set_to_none=True)
        for i in range(0, len(rows), size):
            loss, _ = micro_loss(trainer, d, rows[i : i + size], norm)
            loss.backward()
        trainer.strategy.clip_grad_norm(trainer.params, trainer.grad_clip)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)

    def __call__(self, trainer: Any, d: Any, unshaped: torch.Tensor) -> dict[str, float]:
        if self.batch is None:
            self.batch = d.batch.select(list(range(min(self.rows, len(d.rewards)))))
        model, opt = trainer.model, trainer.optimizer
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        opt_state = copy.deepcopy(opt.state_dict())
        rng = torch.get_rng_state()
        shaped = d.advantages
        before = self._entropy(trainer)
        after: dict[str, float] = {}
        try:
            for name, adv in (("shaped", shaped), ("unshaped", unshaped)):
                d.advantages = adv
                self._one_update(trainer, d)
                after[name] = self._entropy(trainer)
                model.load_state_dict(weights)
                opt.load_state_dict(copy.deepcopy(opt_state))
        finally:
            d.advantages = shaped
            torch.set_rng_state(rng)
        return {
            "probe/entropy": before,
            "probe/entropy_step_shaped": after["shaped"] - before,
            "probe/entropy_step_unshaped": after["unshaped"] - before,
            "probe/entropy_psi": after["shaped"] - after["unshaped"],
        }

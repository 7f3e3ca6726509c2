"""Prompt sampling: uniform epochs or SPO prioritised sampling (reference-code defect 4: weights unused)."""

from __future__ import annotations

import torch


def spo_priority_weights(p_hat: torch.Tensor, *, eps: float = 0.05) -> torch.Tensor:
    """SPO's sampling weight ``√(p̂ (1 − p̂)) + ε``: prompts the policy solves about half the time come first;
    ``ε`` keeps solved/unsolved prompts reachable."""
    p = torch.as_tensor(p_hat, dtype=torch.float64).clamp(0.0, 1.0)
    return torch.sqrt(p * (1.0 - p)) + eps


class PromptSampler:
    """Draws prompt indices ``[0, n)`` for each step, deterministic given the seed, resumable exactly.

    - ``uniform``: shuffled epochs without replacement; a batch may span the end of an epoch.
    - ``prioritized``: each batch drawn without replacement with probability ∝ the given weights.
    """

    def __init__(self, n: int, *, seed: int = 0, mode: str = "uniform") -> None:
        if n < 1:
            raise ValueError("PromptSampler needs at least one prompt")
        if mode not in ("uniform", "prioritized"):
            raise ValueError(f"unknown sampler mode {mode!r}; known: prioritized, uniform")
        self.n, self.mode = n, mode
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self._perm = torch.randperm(n, generator=self.generator)

    def sample(self, batch_size: int, weights: torch.Tensor | None = None) -> list[int]:
        if self.mode == "prioritized":
            if weights is None:
                raise ValueError("prioritized sampling needs per-prompt weights")
            w = torch.as_tensor(weights, dtype=torch.float64)
            if w.shape != (self.n,) or (w < 0).any() or not torch.isfinite(w).all() or w.sum() <= 0:
                raise ValueError(f"weights must be {self.n} finite non-negative numbers with a positive sum")
            k = min(batch_size, int((w > 0).sum()))
            idx = torch.multinomial(w, k, replacement=False, generator=self.generator).tolist()
            self.position += k
            return idx
        out: list[int] = []
        while len(out) < batch_size:
            take = min(batch_size - len(out), self.n - self.position)
            out.extend(self._perm[self.position : self.position + take].tolist())
            self.position += take
            if self.position >= self.n:
                self.epoch += 1
                self.position = 0
                self._perm = torch.randperm(self.n, generator=self.generator)
        return out

    def state_dict(self) -> dict:
        return {
            "n": self.n,
            "mode": self.mode,
            "epoch": self.epoch,
            "position": self.position,
            "perm": self._perm.clone(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        if int(state["n"]) != self.n:
            raise ValueError(f"sampler state is for {state['n']} prompts, this dataset has {self.n}")
        self.mode = state["mode"]
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._perm = state["perm"].clone()
        self.generator.set_state(state["generator"])

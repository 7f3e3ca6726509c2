"""Per-prompt Beta value tracker, the single-rollout baseline (docs/method.md §1).

Each prompt key holds Beta parameters ``(α, β)``; the baseline is the posterior mean ``v̂ = α / (α + β)``.
``N_0 = 1 / (1 − ρ_min)`` (= 8 for ρ_min = 0.875) is the effective window of the forgetting update
``α ← ρα + b, β ← ρβ + (1 − b)`` with ``b = 1[r > threshold]``.

Fixes reference-code defect 1: the whole state round-trips through ``state_dict()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


class BetaTracker:
    """Per-prompt ``(α, β)`` with MSSR/SPO initialisation and forgetting updates.

    Values are stored as Python floats (IEEE doubles) so updates are exact and deterministic, and
    ``state_dict()`` round-trips bit for bit (float64 tensors).
    """

    def __init__(self, *, rho_min: float = 0.875, default_mean: float = 0.5, threshold: float = 0.5) -> None:
        if not 0.0 <= rho_min < 1.0:
            raise ValueError(f"rho_min must be in [0, 1), got {rho_min}")
        if not 0.0 < default_mean < 1.0:
            raise ValueError(f"default_mean must be in (0, 1), got {default_mean}")
        self.rho_min = rho_min
        self.n0 = 1.0 / (1.0 - rho_min)
        self.default_mean = default_mean
        self.threshold = threshold
        self._alpha: dict[str, float] = {}
        self._beta: dict[str, float] = {}

    # ------------------------------------------------------------------ initialisation
    def init_from_outcomes(self, outcomes: dict[str, Sequence[float]]) -> None:
        """MSSR initialisation: ``v̂_0`` = mean outcome of the starting policy's rollouts of each prompt;
        ``α_0 = N_0 v̂_0``, ``β_0 = N_0 (1 − v̂_0)``. Outcomes are binarised with the threshold."""
        for key, rs in outcomes.items():
            rs = list(rs)
            if not rs:
                raise ValueError(f"prompt {key!r}: no outcomes to initialise from")
            v0 = sum(1.0 if r > self.threshold else 0.0 for r in rs) / len(rs)
            self._alpha[key] = self.n0 * v0
            self._beta[key] = self.n0 * (1.0 - v0)

    def init_spo(self, successes: dict[str, int], n0: int = 8) -> None:
        """SPO initialisation from ``n0`` samples with ``s`` successes and +0.5 smoothing:
        ``α_0 = N_0 (s + 0.5)/(n0 + 1)``, ``β_0 = N_0 (n0 − s + 0.5)/(n0 + 1)``."""
        for key, s in successes.items():
            if not 0 <= s <= n0:
                raise ValueError(f"prompt {key!r}: successes {s} not in [0, {n0}]")
            self._alpha[key] = self.n0 * (s + 0.5) / (n0 + 1)
            self._beta[key] = self.n0 * (n0 - s + 0.5) / (n0 + 1)

    def _params(self, key: str) -> tuple[float, float]:
        if key in self._alpha:
            return self._alpha[key], self._beta[key]
        return self.n0 * self.default_mean, self.n0 * (1.0 - self.default_mean)

    # ------------------------------------------------------------------ use
    def baseline(self, keys: Iterable[str]) -> torch.Tensor:
        """``v̂(x) = α/(α+β)`` per key (float32 ``[B]``); unseen keys give ``default_mean`` (0.5)."""
        vals = []
        for k in keys:
            a, b = self._params(k)
            vals.append(a / (a + b))
        return torch.tensor(vals, dtype=torch.float32)

    def update(
        self,
        keys: Sequence[str],
        rewards: Sequence[float] | torch.Tensor,
        rho: float | Sequence[float] | torch.Tensor,
    ) -> None:
        """Forgetting update, one sample at a time in batch order (a key seen twice is updated twice):
        ``b = 1[r > threshold]``, ``α ← ρα + b``, ``β ← ρβ + (1 − b)``. ``rho`` is a scalar or one per sample.
        ``None``/NaN rewards (excluded samples) leave the tracker unchanged."""
        rewards = rewards.tolist() if isinstance(rewards, torch.Tensor) else list(rewards)
        if isinstance(rho, torch.Tensor):
            rho = rho.tolist()
        rhos = [float(rho)] * len(keys) if isinstance(rho, (int, float)) else [float(x) for x in rho]
        if not (len(rewards) == len(keys) == len(rhos)):
            raise ValueError(
                f"keys ({len(keys)}), rewards ({len(rewards)}) and rho ({len(rhos)}) differ in length"
            )
        for key, r, p in zip(keys, rewards, rhos, strict=True):
            if r is None or r != r:  # excluded / NaN
                continue
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"rho must be in [0, 1], got {p}")
            a, b = self._params(key)
            hit = 1.0 if r > self.threshold else 0.0
            self._alpha[key] = p * a + hit
            self._beta[key] = p * b + (1.0 - hit)

    def params(self, key: str) -> tuple[float, float]:
        return self._params(key)

    def __contains__(self, key: object) -> bool:
        return key in self._alpha

    def __len__(self) -> int:
        return len(self._alpha)

    def metrics(self) -> dict[str, float]:
        """``p_hat_mean`` (mean v̂), ``neff`` (mean α+β, the effective sample size), ``n_tracked``."""
        if not self._alpha:
            return {"p_hat_mean": self.default_mean, "neff": self.n0, "n_tracked": 0.0}
        a = torch.tensor(list(self._alpha.values()), dtype=torch.float64)
        b = torch.tensor([self._beta[k] for k in self._alpha], dtype=torch.float64)
        return {
            "p_hat_mean": float((a / (a + b)).mean()),
            "neff": float((a + b).mean()),
            "n_tracked": float(len(a)),
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        keys = list(self._alpha)
        return {
            "keys": keys,
            "alpha": torch.tensor([self._alpha[k] for k in keys], dtype=torch.float64),
            "beta": torch.tensor([self._beta[k] for k in keys], dtype=torch.float64),
            "rho_min": self.rho_min,
            "default_mean": self.default_mean,
            "threshold": self.threshold,
        }

    def load_state_dict(self, state: dict) -> None:
        self.rho_min = float(state["rho_min"])
        self.n0 = 1.0 / (1.0 - self.rho_min)
        self.default_mean = float(state["default_mean"])
        self.threshold = float(state["threshold"])
        keys = list(state["keys"])
        alpha, beta = state["alpha"].tolist(), state["beta"].tolist()
        if not (len(keys) == len(alpha) == len(beta)):
            raise ValueError("corrupt tracker state: keys/alpha/beta lengths differ")
        self._alpha = dict(zip(keys, alpha, strict=True))
        self._beta = dict(zip(keys, beta, strict=True))

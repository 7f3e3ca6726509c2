"""Collapse detection on training curves (used live by the trainer and by ``mssr compare``).

Two signals, each on an exponentially smoothed series (smoothing ``ema`` ∈ (0, 1]; 1 = no smoothing):

- **entropy collapse**: the smoothed sampled-token entropy falls below ``entropy_frac`` × its running peak and
  stays there for ``patience`` consecutive observations (the paper's MVSR: 0.08 → 0.03 within ~10 steps,
  a ratio of 0.375 < 0.5);
- **accuracy collapse**: validation accuracy falls below its best so far by more than ``val_margin``
  (absolute) for ``patience`` consecutive evaluations.

A slow decline that stays above the fraction, or noise around a level, is not a collapse. Observations before
``warmup`` are used for the peak but never flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Signal:
    ema: float | None = None
    peak: float | None = None
    below: int = 0
    n: int = 0
    flagged_at: int | None = None


@dataclass
class CollapseDetector:
    entropy_frac: float = 0.5
    val_margin: float = 0.1
    patience: int = 3
    ema: float = 0.5
    warmup: int = 5
    _entropy: _Signal = field(default_factory=_Signal)
    _val: _Signal = field(default_factory=_Signal)

    def update_entropy(self, step: int, value: float) -> bool:
        """Feed one entropy value; True the first time an entropy collapse is confirmed."""
        s = self._entropy
        s.n += 1
        s.ema = value if s.ema is None else self.ema * value + (1 - self.ema) * s.ema
        s.peak = s.ema if s.peak is None else max(s.peak, s.ema)
        low = s.n > self.warmup and s.peak > 0 and s.ema < self.entropy_frac * s.peak
        s.below = s.below + 1 if low else 0
        if s.below >= self.patience and s.flagged_at is None:
            s.flagged_at = step
            return True
        return False

    def update_val(self, step: int, accuracy: float) -> bool:
        """Feed one validation accuracy; True the first time an accuracy collapse is confirmed."""
        s = self._val
        s.n += 1
        s.peak = accuracy if s.peak is None else max(s.peak, accuracy)
        s.below = s.below + 1 if accuracy < s.peak - self.val_margin else 0
        if s.below >= self.patience and s.flagged_at is None:
            s.flagged_at = step
            return True
        return False

    @property
    def entropy_collapse_step(self) -> int | None:
        return self._entropy.flagged_at

    @property
    def val_collapse_step(self) -> int | None:
        return self._val.flagged_at

    def state_dict(self) -> dict:
        return {"entropy": vars(self._entropy).copy(), "val": vars(self._val).copy()}

    def load_state_dict(self, state: dict) -> None:
        self._entropy = _Signal(**state["entropy"])
        self._val = _Signal(**state["val"])


def detect_collapse(
    entropy: list[tuple[int, float]], val: list[tuple[int, float]] = (), **params: float
) -> dict[str, int | None]:
    """Run a fresh :class:`CollapseDetector` over whole curves of ``(step, value)`` pairs."""
    det = CollapseDetector(**params)
    for step, v in entropy:
        det.update_entropy(step, v)
    for step, v in val:
        det.update_val(step, v)
    return {"entropy_collapse_step": det.entropy_collapse_step, "val_collapse_step": det.val_collapse_step}

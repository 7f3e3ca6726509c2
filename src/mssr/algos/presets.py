"""Named algorithms as data: which estimator, tracker, shaping and extra loss terms each one uses.

Adding an algorithm is one :data:`ALGORITHMS` entry; the trainer reads the spec, never the name.
Values follow docs/method.md (the paper's settings); the trainer's config may override any field.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mssr.algos.registry import Registry


@dataclass(frozen=True)
class AlgorithmSpec:
    advantage: str  # key of ADVANTAGE_ESTIMATORS
    rollouts_per_prompt: int  # n; single-rollout methods use 1
    use_tracker: bool = False  # per-prompt Beta baseline (§1) + ρ schedule (§2)
    shaping: bool = False  # entropy-based advantage shaping (§4)
    kl_coef: float = 0.01  # KL-to-reference loss weight (§5)
    entropy_coef: float = 0.0  # entropy-loss ablation weight (§6)
    crossmodal_coef: float = 0.0  # cross-modal KL ablation weight (§6)
    grad_clip: float = 1.0  # grad-norm clip (§5: 0.5 single-rollout, 1.0 group)
    description: str = ""

    def with_(self, **changes: object) -> AlgorithmSpec:
        return replace(self, **changes)


ALGORITHMS: Registry = Registry("algorithm")

_single = dict(advantage="single_rollout", rollouts_per_prompt=1, use_tracker=True, grad_clip=0.5)
ALGORITHMS.register(
    "mssr",
    AlgorithmSpec(**_single, shaping=True, description="MSSR: tracker + global norm + entropy shaping"),
)
ALGORITHMS.register("mvsr", AlgorithmSpec(**_single, description="MVSR: vanilla single-rollout (no shaping)"))
ALGORITHMS.register(
    "mvsr_entropy_loss",
    AlgorithmSpec(**_single, entropy_coef=0.01, description="MVSR + entropy loss (paper ablation, §6)"),
)
ALGORITHMS.register(
    "mvsr_crossmodal",
    AlgorithmSpec(
        **_single,
        kl_coef=0.0,
        crossmodal_coef=0.01,
        description="MVSR + cross-modal KL, reference KL off (§6)",
    ),
)
ALGORITHMS.register(
    "grpo", AlgorithmSpec(advantage="grpo", rollouts_per_prompt=8, description="GRPO, group of 8")
)
ALGORITHMS.register(
    "rloo", AlgorithmSpec(advantage="rloo", rollouts_per_prompt=8, description="RLOO, group of 8")
)
ALGORITHMS.register(
    "reinforce_pp",
    AlgorithmSpec(
        advantage="reinforce_pp", rollouts_per_prompt=1, description="REINFORCE++ baseline-free, n = 1"
    ),
)

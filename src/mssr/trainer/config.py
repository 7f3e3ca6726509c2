"""The training configuration: typed dataclasses, YAML + dotted overrides (see :mod:`mssr.config`).

Defaults follow docs/method.md except where scaled down for a 2-core CPU; those fields say "CPU:" with the
paper's value. ``configs/`` holds the CPU defaults per algorithm and the paper's Qwen2.5-VL settings.
Renamed fields keep their old names as accepted aliases (``ALIASES``; a deprecation warning names old → new).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import ClassVar, Literal

from mssr.algos import (
    ADVANTAGE_ESTIMATORS,
    AGG_MODES,
    ALGORITHMS,
    KL_ESTIMATORS,
    RHO_SCHEDULES,
    AlgorithmSpec,
)
from mssr.config import ConfigError
from mssr.rewards.verify import MAX_RESPONSE_CHARS

DTYPE_NAMES = ("float32", "bfloat16", "float16")
RESUME_MODES = ("auto", "never", "force")


def _number(
    name: str,
    value: float | None,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    optional: bool = False,
) -> None:
    """One-line range check of a numeric field: finite, and within [lo, hi] (open ends where said)."""
    if value is None:
        if optional:
            return
        raise ConfigError(f"{name} may not be null")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    low_bad = lo is not None and (value <= lo if lo_open else value < lo)
    high_bad = hi is not None and (value >= hi if hi_open else value > hi)
    if low_bad or high_bad:
        left = "-inf" if lo is None else f"{lo:g}"
        right = "inf" if hi is None else f"{hi:g}"
        rng = f"{'(' if lo_open or lo is None else '['}{left}, {right}{')' if hi_open or hi is None else ']'}"
        raise ConfigError(f"{name} must be in {rng}, got {value!r}")


@dataclass
class ModelConfig:
    path: str | None = None  # saved policy / Qwen2(.5)-VL checkpoint dir; None = built-in tiny preset
    preset: str = "tiny"  # built-in preset when path is None: tiny | small | base
    warm_start: bool = True  # built-in preset: start from the cached SFT base (created if missing)
    # compute dtype of forward passes (autocast, or FSDP2's mixed precision): auto | float32 | bfloat16 | float16.
    # auto: bfloat16 on a GPU that supports it; on CPU bfloat16 only for presets measured faster in it
    # (``base``; docs/training.md "Precision"), else float32.
    dtype: str = "auto"
    # dtype of the parameters and optimizer state ("master weights"). float32 keeps small updates (lr 1e-6)
    # from rounding away; bfloat16 is pure low-precision training, an explicit opt-in (warned at small lr).
    param_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    min_pixels: int | None = None  # image processor's lower bound on pixels per image; None: its default
    max_pixels: int | None = None  # upper bound (images are resized into [min, max]); paper configs: 1003520
    gradient_checkpointing: bool = False  # recompute activations in backward (less memory, ~1/3 more compute)
    freeze_vision: bool = False  # train the language model only (vision tower and merger frozen)
    lora_rank: int = 0  # > 0: train LoRA adapters (peft) instead of the full weights
    lora_alpha: float = 16.0  # LoRA scale = lora_alpha / lora_rank
    lora_dropout: float = 0.0  # dropout on the LoRA adapters' input, in [0, 1)
    # module names adapted by LoRA (the language model's linear layers); the vision tower is excluded unless
    # lora_vision is true
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    lora_vision: bool = False  # also adapt the vision tower's linear layers

    def validate(self) -> None:
        if self.dtype not in ("auto", *DTYPE_NAMES):
            raise ConfigError(f"model.dtype: unknown {self.dtype!r}; known: auto, {', '.join(DTYPE_NAMES)}")
        if self.path is None:
            from mssr.models.presets import PRESETS

            if self.preset not in PRESETS:
                raise ConfigError(f"model.preset: unknown {self.preset!r}; known: {', '.join(PRESETS)}")
        for name in ("min_pixels", "max_pixels"):
            _number(f"model.{name}", getattr(self, name), lo=1, optional=True)
        if self.lora_rank < 0:
            raise ConfigError("model.lora_rank must be >= 0 (0 = full fine-tuning)")
        if self.lora_rank and not (math.isfinite(self.lora_alpha) and self.lora_alpha > 0):
            raise ConfigError("model.lora_alpha must be > 0")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError("model.lora_dropout must be in [0, 1)")
        if self.lora_rank and not self.lora_target_modules:
            raise ConfigError("model.lora_target_modules must name at least one module")


@dataclass
class DataConfig:
    # a dataset directory or file, a save_to_disk directory, or a Hugging Face id owner/name@split (docs/data.md);
    # None = the built-in task. The Python API also takes a datasets.Dataset or a list of dicts (train_dataset=)
    train: str | None = None
    val: str | None = None  # None: the built-in task's val split, or data.train's "val" split if present
    train_split: str | None = "train"  # split read from a dataset directory given as data.train
    val_split: str | None = "val"  # split read from data.val's directory (or data.train's if val is None)
    builtin: dict = field(default_factory=dict)  # extra arguments of mssr.data.builtin.ensure_dataset
    instruction: str | None = (
        "default"  # "default" = docs/method.md's instruction ("Reward and prompt"); null = none
    )
    system_prompt: str | None = None  # replaces the chat template's default system turn; None keeps it
    # the columns holding the prompt, answer, image(s) and choices; None: the first present of EasyR1's and
    # TRL's usual names (problem/question/prompt/query, answer/ground_truth/solution, images/image, choices)
    prompt_key: str | None = None
    answer_key: str | None = None
    image_key: str | None = None
    choices_key: str | None = None
    # bad data row (corrupt image, no answer, ...): raise = stop at the first, naming file and row; skip = drop
    # it, counted and logged with the first reason (`mssr data inspect` lists every one)
    on_error: Literal["raise", "skip"] = "raise"
    max_train_items: int | None = None  # use only the first N training items; None: all
    # prompts longer than this many text tokens are bad rows (data.on_error: raise or skip); None: the model's
    # context (max_position_embeddings) less rollout.max_new_tokens
    max_prompt_tokens: int | None = None
    cache_dir: str | None = None  # default: $MSSR_CACHE or ~/.cache/mssr

    def validate(self) -> None:
        _number("data.max_train_items", self.max_train_items, lo=1, optional=True)
        _number("data.max_prompt_tokens", self.max_prompt_tokens, lo=1, optional=True)


@dataclass
class TrackerConfig:
    """§1: the per-prompt Beta value tracker (docs/method.md)."""

    # initial (α, β): online = 1 rollout per prompt before step 1; spo = spo_init_rollouts each; none = (4, 4)
    init: Literal["online", "spo", "none"] = "online"
    spo_init_rollouts: int = 8  # n_0: rollouts per prompt of init=spo, >= 1
    reward_threshold: float = 0.5  # a reward above this counts as a success in the tracker, in [0, 1]

    def validate(self) -> None:
        _number("algorithm.tracker.spo_init_rollouts", self.spo_init_rollouts, lo=1)
        _number("algorithm.tracker.reward_threshold", self.reward_threshold, lo=0, hi=1)


@dataclass
class RhoConfig:
    """§2: the tracker's forgetting factor ρ."""

    schedule: str = "kl_window"  # kl_window (MSSR) | per_prompt (SPO) | fixed
    min: float = 0.875  # lower bound of ρ, in [0, max]; N_0 = 1/(1 − min) = 8 remembered outcomes
    max: float = 0.96  # upper bound of ρ, < 1
    # kl_window: ρ falls to min when the window-mean KL(rollout ‖ reference, k3) exceeds this, > 0 (not the KL
    # loss weight kl_coef)
    kl_target: float = 0.01
    kl_window: int = 10  # kl_window: steps averaged, >= 1
    d_half: float = 0.06  # D_half: per_prompt's ρ = 2^(−drift/D_half), clipped; > 0

    def kwargs(self) -> dict[str, float]:
        """Constructor arguments of the configured ρ schedule."""
        bounds = dict(rho_min=self.min, rho_max=self.max)
        return {
            "kl_window": dict(**bounds, target=self.kl_target, window=self.kl_window),
            "per_prompt": dict(**bounds, d_half=self.d_half),
            "fixed": bounds,
        }.get(self.schedule, {})

    def validate(self) -> None:
        if self.schedule not in RHO_SCHEDULES:
            raise ConfigError(
                f"algorithm.rho.schedule: unknown {self.schedule!r}; known: {', '.join(RHO_SCHEDULES.names())}"
            )
        if not 0 <= self.min <= self.max < 1:
            raise ConfigError("algorithm.rho: need 0 <= min <= max < 1")
        if self.kl_window < 1:
            raise ConfigError("algorithm.rho.kl_window must be >= 1")
        _number("algorithm.rho.kl_target", self.kl_target, lo=0, lo_open=True)
        _number("algorithm.rho.d_half", self.d_half, lo=0, lo_open=True)


@dataclass
class ShapingConfig:
    """§4: entropy-based advantage shaping, ψ_t = min(alpha · H_t, |Â_t| / cap), Ã_t = Â_t + ψ_t."""

    enabled: bool | None = None  # shape the advantages (null: the algorithm's choice — mssr only)
    alpha: float = 0.4  # α: entropy weight of the shaping bonus, >= 0
    cap: float = 2.0  # κ, >= 1: ψ_t <= |Â_t|/κ, so an advantage never flips sign
    # H_t: sampled = −p log p of the sampled token; full = full-vocabulary entropy
    entropy: Literal["sampled", "full"] = "sampled"
    # ours, opt-in (a knock-out of the regime study): subtract ψ's mean over the step's tokens, so shaping keeps
    # its differences between tokens but adds no net offset to the advantages (docs/algorithms.md "What the
    # shaping does to entropy"); a small advantage may then change sign
    center: bool = False
    # ours, opt-in (the knock-out of shaping's sign asymmetry): Ã = Â + sign(Â)·ψ, so ψ widens negative advantages
    # as it widens positive ones instead of boosting positive tokens and softening negative ones
    symmetric: bool = False

    def validate(self) -> None:
        _number("algorithm.shaping.alpha", self.alpha, lo=0)
        _number("algorithm.shaping.cap", self.cap)
        if self.cap < 1:
            raise ConfigError(
                "algorithm.shaping.cap must be >= 1 (shaping may never flip an advantage's sign)"
            )
        if self.center and self.symmetric:
            raise ConfigError(
                "algorithm.shaping.center and algorithm.shaping.symmetric are separate knock-outs (centring takes "
                "off ψ's mean, which symmetric shaping does not add); set one of them"
            )


@dataclass
class LossConfig:
    """§5: the policy objective's clipping, KL estimator and token aggregation."""

    kl_estimator: str = "k3"  # estimator of the KL loss term: k1 | k2 | k3 (the ρ schedule always uses k3)
    clip_low: float = 0.2  # PPO clip ε_low: ratio >= 1 − clip_low, in [0, 1)
    clip_high: float = 0.3  # clip-higher ε_high: ratio <= 1 + clip_high, >= 0
    dual_clip: float | None = 3.0  # c of the dual clip for Ã < 0, > 1; null: off
    agg_mode: str = "token-mean"  # how token losses are averaged: a mssr.algos.losses.AGG_MODES entry

    def validate(self) -> None:
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ConfigError(
                f"algorithm.loss.kl_estimator: unknown {self.kl_estimator!r}; known: "
                f"{', '.join(KL_ESTIMATORS.names())}"
            )
        if self.agg_mode not in AGG_MODES:
            raise ConfigError(
                f"algorithm.loss.agg_mode: unknown {self.agg_mode!r}; known: {', '.join(AGG_MODES)}"
            )
        _number("algorithm.loss.clip_low", self.clip_low, lo=0, hi=1, hi_open=True)
        _number("algorithm.loss.clip_high", self.clip_high, lo=0)
        _number("algorithm.loss.dual_clip", self.dual_clip, lo=1, lo_open=True, optional=True)


@dataclass
class GroupConfig:
    """The GRPO advantage's settings: A_i = (r_i − mean_g r) / (std_g r + eps) (docs/method.md)."""

    eps: float = 1e-6  # added to the group std before dividing, >= 0
    unbiased: bool = True  # group std with ddof = 1 (false: ddof = 0)
    scale_by_std: bool = True  # divide by the group std (false: Dr. GRPO's mean-only centring)

    def validate(self) -> None:
        _number("algorithm.group.eps", self.eps, lo=0)


@dataclass
class SingleRolloutConfig:
    """Our variants of the single-rollout advantage (docs/algorithms.md "Signal-scaled advantages"); the
    defaults are the paper's."""

    scale: Literal["unit", "signal"] = "unit"  # signal: Â × min(1, σ_r/σ_A), 0 when all rewards are equal
    zero_uniform: bool = False  # true: a batch whose rewards are all equal gets zero advantages


@dataclass
class SamplerConfig:
    """Which prompts each step draws (docs/method.md, SPO's prioritized sampling)."""

    # prioritized: SPO's, weights √(p̂(1 − p̂)) + priority_eps
    kind: Literal["uniform", "prioritized"] = "uniform"
    priority_eps: float = 0.05  # ε of the prioritized sampler's weights, >= 0

    def validate(self) -> None:
        _number("algorithm.sampler.priority_eps", self.priority_eps, lo=0)


# AlgorithmConfig's fields whose null means "the named algorithm's value" (an AlgorithmSpec field of that name)
PRESET_FIELDS = ("rollouts_per_prompt", "advantage", "kl_coef", "entropy_coef", "crossmodal_coef")


@dataclass
class AlgorithmConfig:
    # old field names, still accepted in YAML, overrides and saved configs (with a deprecation warning); a name
    # that became a section's (``rho``, ``shaping``) is the old field only when its value is not a mapping
    ALIASES: ClassVar[dict[str, str]] = {
        "tracker_init": "tracker.init",
        "spo_init_rollouts": "tracker.spo_init_rollouts",
        "spo_n0": "tracker.spo_init_rollouts",
        "reward_threshold": "tracker.reward_threshold",
        "rho": "rho.schedule",
        "rho_schedule": "rho.schedule",
        "rho_min": "rho.min",
        "rho_max": "rho.max",
        "rho_kl_target": "rho.kl_target",
        "kl_target": "rho.kl_target",
        "rho_kl_window": "rho.kl_window",
        "kl_window": "rho.kl_window",
        "rho_d_half": "rho.d_half",
        "d_half": "rho.d_half",
        "shaping": "shaping.enabled",
        "shaping_alpha": "shaping.alpha",
        "alpha": "shaping.alpha",
        "shaping_cap": "shaping.cap",
        "kappa": "shaping.cap",
        "shaping_entropy": "shaping.entropy",
        "entropy_mode": "shaping.entropy",
        "kl_estimator": "loss.kl_estimator",
        "clip_low": "loss.clip_low",
        "clip_high": "loss.clip_high",
        "dual_clip": "loss.dual_clip",
        "dual_clip_c": "loss.dual_clip",
        "loss_agg_mode": "loss.agg_mode",
        "grpo_eps": "group.eps",
        "grpo_unbiased": "group.unbiased",
        "scale_by_std": "group.scale_by_std",
        "adv_scale": "single_rollout.scale",
        "adv_zero_uniform": "single_rollout.zero_uniform",
        "sampler": "sampler.kind",
        "priority_eps": "sampler.priority_eps",
    }

    name: str = "mssr"  # a key of mssr.algos.ALGORITHMS; the fields below left null take its values
    # the algorithm's own settings (null: the ALGORITHMS entry's value, filled in when the config is loaded)
    rollouts_per_prompt: int | None = None  # n, rollouts per prompt: 1 single-rollout, 8 grpo/rloo
    advantage: str | None = None  # a key of ADVANTAGE_ESTIMATORS: single_rollout, grpo, rloo, reinforce_pp
    kl_coef: float | None = None  # weight β_KL of the KL-to-reference *loss* term (§5), >= 0; 0.01 (0: off)
    entropy_coef: float | None = None  # weight of the entropy-loss ablation term (§6), >= 0
    crossmodal_coef: float | None = None  # weight of the cross-modal KL ablation term (§6), >= 0
    tracker: TrackerConfig = field(default_factory=TrackerConfig)  # §1 the per-prompt Beta value tracker
    rho: RhoConfig = field(default_factory=RhoConfig)  # §2 the tracker's forgetting factor ρ
    shaping: ShapingConfig = field(default_factory=ShapingConfig)  # §4 entropy-based advantage shaping
    loss: LossConfig = field(default_factory=LossConfig)  # §5 clipping, KL estimator, token aggregation
    group: GroupConfig = field(default_factory=GroupConfig)  # the GRPO estimator's ε, ddof and std scaling
    # single-rollout advantage variants of ours (docs/algorithms.md "Signal-scaled advantages"; off = the paper)
    single_rollout: SingleRolloutConfig = field(default_factory=SingleRolloutConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)  # which prompts each step draws

    def estimator_kwargs(self) -> dict[str, float | bool]:
        """The advantage estimator's own settings: ``group`` for GRPO, ``single_rollout`` (when not the paper's)
        for the single-rollout estimator; the others take their defaults."""
        advantage = self.spec().advantage
        if advantage == "grpo":
            return asdict(self.group)
        if advantage == "single_rollout" and self.single_rollout != SingleRolloutConfig():
            return asdict(self.single_rollout)
        return {}

    def spec(self) -> AlgorithmSpec:
        """The algorithm as configured: its ALGORITHMS entry with every setting given here (not null) applied."""
        base = ALGORITHMS.get(self.name)
        changes = {k: getattr(self, k) for k in PRESET_FIELDS if getattr(self, k) is not None}
        if self.shaping.enabled is not None:
            changes["shaping"] = self.shaping.enabled
        return base.with_(**changes)

    def resolve(self) -> None:
        """Fill each null that stands for the algorithm's value (``PRESET_FIELDS``, ``shaping.enabled``) from its
        ALGORITHMS entry: a loaded config holds every value the run uses, and a run's config.yaml records it."""
        spec = self.spec()
        for k in PRESET_FIELDS:
            if getattr(self, k) is None:
                setattr(self, k, getattr(spec, k))
        if self.shaping.enabled is None:
            self.shaping.enabled = spec.shaping

    def validate(self) -> None:
        if self.name not in ALGORITHMS:
            raise ConfigError(
                f"algorithm.name: unknown {self.name!r}; known: {', '.join(ALGORITHMS.names())}"
            )
        spec = self.spec()
        if spec.advantage not in ADVANTAGE_ESTIMATORS:
            raise ConfigError(
                f"algorithm.advantage: unknown {spec.advantage!r}; known: {', '.join(ADVANTAGE_ESTIMATORS.names())}"
            )
        if spec.advantage in ("grpo", "rloo") and spec.rollouts_per_prompt < 2:
            raise ConfigError(
                f"algorithm: {self.name} ({spec.advantage}) needs rollouts_per_prompt >= 2 (a group); got "
                f"{spec.rollouts_per_prompt}. For one rollout per prompt use mssr or mvsr."
            )
        if spec.rollouts_per_prompt < 1:
            raise ConfigError("algorithm.rollouts_per_prompt must be >= 1")
        if self.single_rollout != SingleRolloutConfig() and spec.advantage != "single_rollout":
            raise ConfigError(
                "algorithm.single_rollout (scale, zero_uniform) applies to the single_rollout advantage (mssr, mvsr)"
            )
        for k in ("kl_coef", "entropy_coef", "crossmodal_coef"):
            _number(f"algorithm.{k}", getattr(spec, k), lo=0)


@dataclass
class VllmConfig:
    """The vLLM engine's settings (``rollout.engine=vllm``; docs/rollout.md "vLLM engine")."""

    gpu_memory_utilization: float = 0.3  # fraction of GPU memory vLLM may take beside the trainer, in (0, 1]
    max_model_len: int | None = None  # prompt + response token budget; null = the model's own
    # on a GPU: free vLLM's memory between generation and the update (0 = off; 1 = weights offloaded to CPU and
    # the KV cache dropped; 2 = both dropped — the weights are synced in after the update anyway)
    sleep_level: int = 0

    def validate(self) -> None:
        if self.sleep_level not in (0, 1, 2):
            raise ConfigError(f"rollout.vllm.sleep_level must be 0, 1 or 2, got {self.sleep_level!r}")
        _number("rollout.vllm.gpu_memory_utilization", self.gpu_memory_utilization, lo=0, hi=1, lo_open=True)
        _number("rollout.vllm.max_model_len", self.max_model_len, lo=1, optional=True)


@dataclass
class RolloutConfig:
    # fields that moved into the vllm section, still accepted under their old names (with a deprecation warning)
    ALIASES: ClassVar[dict[str, str]] = {
        "vllm_gpu_memory_utilization": "vllm.gpu_memory_utilization",
        "vllm_max_model_len": "vllm.max_model_len",
        "vllm_sleep_level": "vllm.sleep_level",
    }

    rollouts_per_step: int = 64  # CPU: paper 2048 (MSSR 2048 × 1, GRPO 256 × 8)
    temperature: float = 1.0  # sampling temperature of the rollouts, > 0
    top_p: float = 1.0  # nucleus sampling mass, in (0, 1]; 1 = off
    max_new_tokens: int = 64  # CPU: paper 2048 (long reasoning responses)
    gen_batch_size: int = 64  # rows per generation call (per process); bounds the KV cache's memory
    mask_truncated: bool = False  # drop responses that hit max_new_tokens from the loss
    # where the PPO ratio's old log-probs come from (docs/rollout.md "Old log-probs"): "auto" = the sampler's
    # own where they equal the trainer's forward (built-in engine, float32, sampled entropy: skips one pass),
    # else the trainer's teacher-forced pass; "trainer" = always that pass; "sampler" = always the sampler's
    # (vLLM's under rollout.engine=vllm), so the ratio is taken against the distribution actually sampled
    old_logprobs: Literal["auto", "trainer", "sampler"] = "auto"
    # truncated importance sampling (Yao et al. 2025): with the trainer's old log-probs, weight each token's
    # policy-gradient term by min(π_old/π_sampler, tis_cap), correcting for the sampler/trainer mismatch;
    # null = off (2.0 is the published choice)
    tis_cap: float | None = None
    reuse_sampler_logprobs: bool | None = None  # deprecated: false = old_logprobs: trainer, true = auto
    # run each distinct prompt once per group (generation prefill and teacher-forced passes) and reuse its KV
    # cache for the group's n rows (mssr.rollout.prefix); false runs every row's full sequence
    share_prompts: bool = True
    # rollout engine: "hf" = the built-in sampling loop over the policy's own modules; "vllm" = vLLM
    # (docs/rollout.md "vLLM engine"), with the policy's weights streamed into it after every update
    engine: Literal["hf", "vllm"] = "hf"
    vllm: VllmConfig = field(default_factory=VllmConfig)  # the vLLM engine's own settings

    def __post_init__(self) -> None:
        if self.reuse_sampler_logprobs is not None:
            mapped = "auto" if self.reuse_sampler_logprobs else "trainer"
            warnings.warn(
                f"rollout.reuse_sampler_logprobs is deprecated: use rollout.old_logprobs={mapped}",
                DeprecationWarning,
                stacklevel=3,
            )
            if self.old_logprobs == "auto":
                self.old_logprobs = mapped
            self.reuse_sampler_logprobs = None

    def validate(self) -> None:
        if self.rollouts_per_step < 1:
            raise ConfigError("rollout.rollouts_per_step must be >= 1")
        if self.old_logprobs not in ("auto", "trainer", "sampler"):
            raise ConfigError(
                f"rollout.old_logprobs must be auto, trainer or sampler, got {self.old_logprobs!r}"
            )
        _number("rollout.tis_cap", self.tis_cap, lo=1, optional=True)
        if self.vllm.sleep_level and self.engine != "vllm":
            raise ConfigError("rollout.vllm.sleep_level is an option of rollout.engine=vllm")
        if self.tis_cap is not None and self.old_logprobs == "sampler":
            raise ConfigError(
                "rollout.tis_cap corrects the trainer's old log-probs towards the sampler's; with "
                "rollout.old_logprobs=sampler the ratio is already taken against the sampler (unset one of them)"
            )
        _number("rollout.temperature", self.temperature)
        if self.temperature <= 0:
            raise ConfigError("rollout.temperature must be > 0 (greedy decoding is for evaluation)")
        _number("rollout.top_p", self.top_p, lo=0, hi=1, lo_open=True)
        _number("rollout.max_new_tokens", self.max_new_tokens, lo=1)
        _number("rollout.gen_batch_size", self.gen_batch_size, lo=1)


@dataclass
class OptimConfig:
    lr: float = 1e-4  # CPU: paper 1e-6 (full-size models)
    weight_decay: float = 0.01  # AdamW decoupled weight decay, >= 0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW (β1, β2), each in [0, 1)
    eps: float = 1e-8  # AdamW ε, > 0
    grad_clip: float | None = None  # null: the algorithm's, filled in at load (0.5 single-rollout, 1.0 group)
    # Paper convention: the optimizer mini-batch is a fixed number of prompts, so single-rollout makes n times
    # more updates per step than a group method. Set updates_per_step for the equal-updates convention.
    mini_batch_prompts: int = 16  # CPU: paper 128
    updates_per_step: int | None = None  # fixed optimizer updates per step (overrides the mini-batch count)
    # token budget of one micro-batch (rows × (longest prompt + longest response)), for the update and the
    # log-prob / reference passes: rows sorted by length and packed under it (verl's ppo_max_token_len_per_gpu);
    # null = micro_batch_size rows per micro-batch
    micro_batch_tokens: int | None = None
    # PPO's target-KL early stopping (ours for MSSR; off by default): a step's remaining updates are skipped
    # once a mini-batch's KL(π_old ‖ π_θ) (k1, ``actor/ppo_kl``, measured before its update) exceeds
    # 1.5 × target_kl, as in the PPO implementations of Spinning Up / Stable-Baselines3; null: off
    target_kl: float | None = None
    micro_batch_size: int = 16  # responses per forward/backward (gradient accumulation)
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: decays to 0 over `steps`
    warmup_steps: int = 0  # linear learning-rate warm-up, in steps

    def validate(self) -> None:
        _number("optim.lr", self.lr, lo=0, lo_open=True)
        _number("optim.weight_decay", self.weight_decay, lo=0)
        if len(self.betas) != 2:
            raise ConfigError("optim.betas must have two values")
        for i, b in enumerate(self.betas):
            _number(f"optim.betas[{i}]", b, lo=0, hi=1, hi_open=True)
        _number("optim.eps", self.eps, lo=0, lo_open=True)
        _number("optim.grad_clip", self.grad_clip, lo=0, lo_open=True, optional=True)
        _number("optim.warmup_steps", self.warmup_steps, lo=0)
        if self.mini_batch_prompts < 1 or self.micro_batch_size < 1:
            raise ConfigError("optim.mini_batch_prompts and optim.micro_batch_size must be >= 1")
        _number("optim.micro_batch_tokens", self.micro_batch_tokens, lo=1, optional=True)
        if self.updates_per_step is not None and self.updates_per_step < 1:
            raise ConfigError("optim.updates_per_step must be >= 1")
        _number("optim.target_kl", self.target_kl, lo=0, lo_open=True, optional=True)


@dataclass
class RewardConfig:
    spec: str = "accuracy"  # accuracy | format | pkg.mod:func | path/file.py:func
    require_clean_end: bool = True  # nothing but whitespace may follow the final \boxed{}
    timeout_s: float = 5.0  # seconds one reward call may take; a late one counts as no reward
    num_workers: int = 0  # reward worker processes; 0 = in-process thread (use > 0 for untrusted plug-ins)
    # the reward sees each response's last N characters (the final answer is at the end); bounds the work of
    # grading a degenerate response so that in-process deadlines hold; null = whole responses
    max_response_chars: int | None = MAX_RESPONSE_CHARS  # mssr.rewards.verify's cap (32,768)
    binarize_threshold: float | None = None  # map each score to 1.0 if >= this else 0.0; None: keep scores
    # stop the run when more than this fraction of a step's samples has no usable reward (raised, timed out or
    # None) for max_excluded_steps consecutive steps (0 = never stop)
    max_excluded_frac: float = 0.5
    max_excluded_steps: int = 5  # consecutive steps over max_excluded_frac before the run stops (0 = never)

    def validate(self) -> None:
        _number("reward.timeout_s", self.timeout_s, lo=0, lo_open=True)
        _number("reward.num_workers", self.num_workers, lo=0)
        _number("reward.max_response_chars", self.max_response_chars, lo=1, optional=True)
        _number("reward.binarize_threshold", self.binarize_threshold, optional=True)
        _number("reward.max_excluded_frac", self.max_excluded_frac, lo=0, hi=1)
        _number("reward.max_excluded_steps", self.max_excluded_steps, lo=0)
        from mssr.rewards import RewardSpecError, build_reward

        try:  # a plug-in is imported here: a typo fails at load time, not after the model is built
            build_reward(self.spec)
        except RewardSpecError as exc:
            raise ConfigError(f"reward.spec: {exc}") from None


@dataclass
class ValConfig:
    every: int = 10  # steps; 0 disables periodic validation
    max_items: int | None = None  # validate on the first N items only; None: the whole val split
    batch_size: int = 64  # prompts per generation call during validation
    # CPU: sampled (T = rollout.temperature) pass@1; greedy decoding saturates at 1.0 on the built-in task from
    # the start. The paper's protocol (greedy) is what configs/paper use and what `mssr eval` does by default.
    greedy: bool = False
    at_start: bool = True  # also validate before the first step (step 0)

    def validate(self) -> None:
        _number("val.every", self.every, lo=0)
        _number("val.max_items", self.max_items, lo=0, optional=True)
        _number("val.batch_size", self.batch_size, lo=1)


@dataclass
class CheckpointConfig:
    every: int = 50  # steps; 0 = only at the end
    keep_last: int = 2  # checkpoints kept on disk (older ones are deleted), >= 1
    # auto: continue from the latest checkpoint of output_dir, refusing one whose config differs in anything
    # that changes the run's meaning (algorithm, model, data, seeds, batch shape); force: continue anyway;
    # never: start fresh (refused if output_dir already holds a run); or the path of a checkpoint directory
    resume: str = "auto"

    def validate(self) -> None:
        _number("checkpoint.every", self.every, lo=0)
        _number("checkpoint.keep_last", self.keep_last, lo=1)
        if self.resume not in RESUME_MODES:
            from pathlib import Path

            p = Path(self.resume)
            if not (p / "trainer_state.pt").is_file():
                raise ConfigError(
                    f"checkpoint.resume: {self.resume!r} is neither one of {', '.join(RESUME_MODES)} nor a "
                    "checkpoint directory (with trainer_state.pt)"
                )


@dataclass
class LoggingConfig:
    tensorboard: bool = True  # write TensorBoard event files into the run directory
    wandb: bool = False  # log to Weights & Biases (needs wandb installed)
    wandb_project: str = "mssr"  # W&B project name
    progress: bool = True  # a live bar on a terminal; one plain line per step when stderr is not a terminal
    # plain progress lines (stderr when it is not a terminal, and run.log always): at most one per N seconds
    # (the last step always); 0 = every step
    line_every_s: float = 0.0
    plot: bool = True  # write metric plots (PNG) into the run directory at the end
    collapse_warning: bool = True  # warn when entropy or validation accuracy collapses (mssr.algos.collapse)
    # every N steps, the entropy change attributable to entropy shaping on a fixed probe batch (a one-step
    # counterfactual with and without ψ; mssr.trainer.shaping_probe); 0 = off. Shaping algorithms, one process
    shaping_probe_every: int = 0

    def validate(self) -> None:
        _number("logging.shaping_probe_every", self.shaping_probe_every, lo=0)
        _number("logging.line_every_s", self.line_every_s, lo=0)


@dataclass
class ParallelConfig:
    """Data parallelism over the processes that torchrun / accelerate start (one process = plain training)."""

    # ddp: every rank holds the whole model, gradients are all-reduced; fsdp: FSDP2 (``fully_shard``) shards
    # parameters, gradients and optimizer state per vision block, decoder layer and root
    strategy: Literal["ddp", "fsdp"] = "ddp"
    reshard_after_forward: bool = True  # fsdp: free gathered layers after forward (less memory, more traffic)
    cpu_offload: bool = False  # fsdp: keep sharded parameters, gradients and optimizer state in CPU memory


@dataclass
class TrainConfig:
    steps: int = 100  # rollout + update steps; CPU: paper 120
    seed: int = 0  # seeds sampling, prompt order and (for presets) initial weights
    output_dir: str = "runs/default"  # the run directory (config, metrics, checkpoints, final policy)
    device: str = "auto"  # auto | cpu | cuda
    # torch intra-op threads of this process (null: torch's default, one per core). On a small or shared CPU
    # machine 1 is often fastest for tiny models: several processes with 2 threads each oversubscribe the
    # cores and a step can run 20-40x slower (docs/benchmarks.md).
    threads: int | None = None
    model: ModelConfig = field(default_factory=ModelConfig)  # the policy: checkpoint or preset, dtypes, LoRA
    parallel: ParallelConfig = field(default_factory=ParallelConfig)  # DDP / FSDP2 over torchrun processes
    data: DataConfig = field(default_factory=DataConfig)  # training and validation sets, prompt wording
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)  # the RL method and its settings
    rollout: RolloutConfig = field(default_factory=RolloutConfig)  # sampling: budget, temperature, length
    optim: OptimConfig = field(default_factory=OptimConfig)  # AdamW, batch shape, lr schedule
    reward: RewardConfig = field(default_factory=RewardConfig)  # the reward function and how it is run
    val: ValConfig = field(default_factory=ValConfig)  # periodic validation
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)  # saving and resuming
    logging: LoggingConfig = field(default_factory=LoggingConfig)  # TensorBoard, W&B, progress, plots

    def validate(self) -> None:
        if self.steps < 0:
            raise ConfigError("steps must be >= 0")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("threads must be >= 1 (or null for torch's default)")
        dev = self.device.split(":")[0]
        if dev not in ("auto", "cpu", "cuda", "mps") or (
            ":" in self.device and not (dev == "cuda" and self.device.split(":", 1)[1].isdigit())
        ):
            raise ConfigError(f"device: unknown {self.device!r}; known: auto, cpu, cuda, cuda:N, mps")
        if not self.output_dir:
            raise ConfigError("output_dir may not be empty")
        n = self.algorithm.spec().rollouts_per_prompt
        if self.rollout.rollouts_per_step % n:
            raise ConfigError(
                f"rollout.rollouts_per_step ({self.rollout.rollouts_per_step}) must be a multiple of the "
                f"algorithm's rollouts_per_prompt ({n}) for equal-rollout budgets"
            )

    def resolve(self) -> None:
        """A null ``optim.grad_clip`` is the algorithm's (0.5 single rollout, 1.0 group; see AlgorithmConfig.resolve
        for the algorithm's own nulls)."""
        if self.optim.grad_clip is None:
            self.optim.grad_clip = self.algorithm.spec().grad_clip

    @property
    def prompts_per_step(self) -> int:
        return self.rollout.rollouts_per_step // self.algorithm.spec().rollouts_per_prompt

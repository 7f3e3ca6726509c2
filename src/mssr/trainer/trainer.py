"""The RL trainer: one step as a short sequence of named stages (docs/architecture.md, "One training step as data").

``sample prompts → rollout → score → old log-probs/entropies → reference log-probs → advantages (+ tracker/ρ)
→ entropy shaping → policy update over mini-batches → tracker update → metrics``; periodic validation and
atomic checkpoints around it. Algorithm choices arrive as an :class:`~mssr.algos.AlgorithmSpec`; the loop
never branches on an algorithm's name.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import random
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mssr import __version__
from mssr.algos import (
    BetaTracker,
    PromptSampler,
    ResponseStore,
    build_rho_schedule,
    compute_advantages,
    per_sample_kl,
    sampled_token_entropy,
    shape_advantages,
    spo_priority_weights,
)
from mssr.algos.collapse import CollapseDetector
from mssr.algos.objective import ObjectiveWeights, rl_objective, truncated_is_weights
from mssr.config import ConfigError, dump_yaml, to_dict
from mssr.environment import describe as describe_environment
from mssr.evaluation.evaluator import evaluate
from mssr.models.lora import (
    adapter_state_dict,
    adapters_disabled,
    apply_lora,
    freeze_vision,
    is_lora,
    load_adapter_state_dict,
    merged_state_dict,
    save_merged,
)
from mssr.rewards import build_reward, score_batch
from mssr.rollout.concat import concat_batches
from mssr.rollout.engine import default_suppress_token_ids
from mssr.rollout.logprobs import compute_logprobs
from mssr.rollout.micro_batches import plan_micro_batches, row_lengths
from mssr.rollout.prompting import records_to_prompts
from mssr.rollout.vllm_engine import engine_from_config
from mssr.trainer import distributed as dist
from mssr.trainer.checkpoint import (
    UnsafeCheckpointError,
    latest_checkpoint,
    load_state,
    prepare_checkpoint,
    publish_checkpoint,
    save_state,
)
from mssr.trainer.config import TrainConfig
from mssr.trainer.memory import preflight as memory_preflight
from mssr.trainer.metrics_log import MetricsLogger, Progress, plot_curves
from mssr.trainer.parallel import build_strategy
from mssr.trainer.rundir import (
    RunError,
    TrainingInterrupted,
    lock_run_dir,
    open_run_dir,
    resume_config_diff,
    run_has_data,
)
from mssr.trainer.shaping_probe import ShapingProbe

log = logging.getLogger("mssr.train")
# the run's log file only (RUN_DIR/run.log): tracebacks of reward failures and the like
runlog = logging.getLogger("mssr.runlog")
runlog.propagate = False
runlog.addHandler(logging.NullHandler())  # ranks without run.log stay silent (no last-resort stderr lines)
RUN_LOG = "run.log"
ENVIRONMENT_LOG = "environment.jsonl"  # versions and CPU kernels, one line per (re)start of the run
# signals that finish the current step, write a checkpoint and stop (a second SIGINT stops at once)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise ConfigError(f"device={name}: {why} (torch {torch.__version__}); use device=cpu or device=auto")
    return device


# per-token statistics of the policy loss, averaged over the step's tokens (the loss terms are summed)
_TOKEN_WEIGHTED = ("actor/pg_clipfrac", "actor/pg_clipfrac_lower", "actor/ppo_kl")


def _step_seed(seed: int, step: int, salt: int = 0) -> int:
    """A per-step seed independent of any global RNG state, so a resumed run samples identically."""
    return (seed * 1_000_003 + step * 9_176 + salt * 7_919) % (2**31 - 1)


@dataclass
class Gathered:
    """The step's rows from every rank, in rank order (identical on all ranks)."""

    keys: list[str]  # prompt keys
    rewards: torch.Tensor  # [N], 0 where excluded
    valid: torch.Tensor  # [N] bool
    groups: torch.Tensor  # [N] global prompt index (group id)
    lengths: torch.Tensor  # [N] tokens in the loss


@dataclass
class StepData:
    """Everything one step hands from stage to stage (this rank's rows unless said otherwise)."""

    batch: Any
    records: list[Any]
    prompt_ids: torch.Tensor  # [B] global index of each row's prompt in the training set
    rewards: torch.Tensor  # [B], 0 where excluded
    valid: torch.Tensor  # [B] bool: reward usable
    loss_mask: torch.Tensor  # [B, T]
    old_logprobs: torch.Tensor | None = None
    entropy: torch.Tensor | None = None  # the shaping entropy (sampled or full)
    sampled_entropy: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None
    drift: torch.Tensor | None = None  # [N] SPO's D(x) per gathered row (per_prompt ρ), NaN if unseen
    gathered: Gathered | None = None
    advantages: torch.Tensor | None = None
    unshaped_advantages: torch.Tensor | None = None  # Â before entropy shaping (the shaping probe's baseline)
    pass_plan: list[list[int]] | None = None  # micro-batches of the no-grad passes (optim.micro_batch_tokens)
    is_weights: torch.Tensor | None = None  # [B, T] truncated importance weights (rollout.tis_cap), else None


@contextlib.contextmanager
def timed(times: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall-clock seconds of the block to ``times[name]``."""
    t = time.perf_counter()
    try:
        yield
    finally:
        times[name] = times.get(name, 0.0) + time.perf_counter() - t


class RLTrainer:
    """Trains a policy with the configured algorithm. ``policy``, ``train_records``, ``val_records`` and
    ``reward`` override what the config would build (the Python API, :func:`mssr.train`)."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        policy: Any | None = None,
        train_records: list[Any] | None = None,
        val_records: list[Any] | None = None,
        reward: Any | None = None,
    ) -> None:
        self._lock: Any = None
        self._runlog_handler: logging.Handler | None = None
        try:
            self._build(config, policy, train_records, val_records, reward)
        except BaseException:
            self._close_run()  # a run refused while it was being built leaves its directory unlocked
            raise

    def _build(
        self,
        config: TrainConfig,
        policy: Any | None,
        train_records: list[Any] | None,
        val_records: list[Any] | None,
        reward: Any | None,
    ) -> None:
        self.cfg = config
        self.spec = config.algorithm.spec()
        self.device = resolve_device(config.device)
        dist.init_from_env(self.device)
        self.run_dir = Path(config.output_dir)
        self._take_lock()  # first: a second run into this directory is refused before anything is built
        if config.threads:
            torch.set_num_threads(config.threads)
        random.seed(config.seed)
        torch.manual_seed(config.seed)

        from mssr.trainer.setup import build_data, build_policy

        self.policy, self.base_source = (policy, "given") if policy is not None else build_policy(config)
        try:
            self.strategy = build_strategy(config, self.device)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if (
            config.model.lora_rank and config.parallel.strategy == "fsdp"
        ):  # one process too, not only torchrun
            raise ConfigError(
                "model.lora_rank with parallel.strategy=fsdp is not supported yet: LoRA trains few weights, "
                "use parallel.strategy=ddp (the frozen base is not sharded)"
            )
        memory_preflight(config, world_size=dist.world_size(), device=self.device)  # raises if it cannot fit
        a = config.algorithm
        self.tracker = (
            BetaTracker(rho_min=a.rho_min, threshold=a.reward_threshold) if self.spec.use_tracker else None
        )
        self.rho = build_rho_schedule(a.rho_schedule, **a.rho_kwargs()) if self.spec.use_tracker else None
        # what the ρ schedule reads each step: "kl" (rollout vs reference), "divergence" (SPO's D(x)), "none"
        self.rho_needs = self.rho.needs if self.rho is not None else "none"
        self.response_store = ResponseStore() if self.rho_needs == "divergence" else None
        self.model = self._prepare_model(self.policy.model)
        self.suppress = tuple(default_suppress_token_ids(self.model, self.policy.processor))
        r = config.rollout
        self.engine = engine_from_config(
            r, self.model, self.policy.processor, suppress_token_ids=self.suppress
        )
        # the old log-probs: the sampler's ("auto": only where they are the training forward's — the built-in
        # engine in float32; bf16 sampling and training forwards differ by ~1e-2, another engine's kernels too)
        # or the trainer's own pass. The sampler's are requested whenever they are used or compared with.
        exact = self.engine.shares_weights and self.strategy.compute_dtype == torch.float32
        self.old_from_sampler = r.old_logprobs == "sampler" or (
            r.old_logprobs == "auto" and exact and r.tis_cap is None
        )
        self.want_sampler_logprobs = (
            self.old_from_sampler or not self.engine.shares_weights or r.tis_cap is not None
        )

        if train_records is None:
            train_records, val_default = build_data(config)
            val_records = val_records if val_records is not None else val_default
        if config.data.max_train_items:
            train_records = train_records[: config.data.max_train_items]
        self.train_records = list(train_records)
        self.val_records = list(val_records or [])
        if config.val.max_items is not None:
            self.val_records = self.val_records[: config.val.max_items]
        proc = self.policy.processor
        kw = dict(instruction=config.data.instruction, system_prompt=config.data.system_prompt)
        if not self.train_records:
            from mssr.data.record import DataError

            raise DataError(
                f"the training set is empty (data.train={config.data.train}, split "
                f"{config.data.train_split!r}, max_train_items={config.data.max_train_items})"
            )
        self.train_prompts = records_to_prompts(self.train_records, proc, namespace="train", **kw)
        self.val_prompts = records_to_prompts(self.val_records, proc, namespace="val", **kw)
        self._limit_prompts()
        if len({p.key for p in self.train_prompts}) != len(self.train_prompts):
            raise ValueError(
                "training prompts have duplicate keys (ids); the value tracker needs unique prompts"
            )

        spec = reward if reward is not None else config.reward.spec
        self.reward = (
            build_reward(spec, require_clean_end=config.reward.require_clean_end)
            if spec == "accuracy"
            else build_reward(spec)
        )
        a = config.algorithm
        self.sampler = PromptSampler(len(self.train_prompts), seed=config.seed, mode=a.sampler)

        o = config.optim
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.params = params
        self.optimizer = torch.optim.AdamW(
            params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_lambda)
        self.grad_clip = o.grad_clip if o.grad_clip is not None else self.spec.grad_clip
        probe_every = config.logging.shaping_probe_every
        if probe_every and dist.is_distributed():
            raise ConfigError(
                "logging.shaping_probe_every runs in one process only (set it to 0 under torchrun)"
            )
        self.shaping_probe = ShapingProbe(probe_every) if probe_every and self.spec.shaping else None
        self.objective_weights = ObjectiveWeights(
            kl_coef=self.spec.kl_coef,
            entropy_coef=self.spec.entropy_coef,
            crossmodal_coef=self.spec.crossmodal_coef,
            kl_estimator=a.kl_estimator,
            clip_low=a.clip_low,
            clip_high=a.clip_high,
            dual_clip_c=a.dual_clip,
        )
        self.step = 0
        self.counters = {
            "rollouts": 0,
            "init_rollouts": 0,
            "gen_tokens": 0,  # response tokens generated by training steps (all ranks)
            "init_gen_tokens": 0,  # response tokens generated by the tracker initialisation (all ranks)
            "skipped_updates": 0,
            "reward_errors": 0,
            "reward_timeouts": 0,
        }
        self.tracker_initialized = False
        self.best_val: float | None = None  # of the scheduled validations (at start, every val.every steps)
        self.last_val: float | None = None
        self.first_val: float | None = None
        self._stop_signal = 0
        self._excluded_streak = 0
        self._failure_kinds: set[str] = set()
        self.resumed_from: Path | None = None
        self.logger: MetricsLogger | None = None
        if not self.val_prompts and (config.val.every or config.val.at_start) and dist.is_main():
            log.warning(
                "no validation data (data.train=%s has no %r split and data.val is not set): val/* metrics "
                "will be missing; set data.val=FILE to validate",
                config.data.train,
                config.data.val_split,
            )
        self.collapse = CollapseDetector()

    # ------------------------------------------------------------------ set-up
    def _prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Master weights in ``param_dtype`` on the device, frozen vision tower / LoRA adapters as configured,
        the reference model (a frozen copy in the compute dtype; none under LoRA, whose reference is the same
        model with adapters disabled), then the parallel strategy's wrapping."""
        m, st = self.cfg.model, self.strategy
        model = model.to(device=self.device, dtype=st.param_dtype)
        if m.freeze_vision:
            freeze_vision(model)
        needs_ref = self.spec.kl_coef > 0 or self.rho_needs == "kl"
        self.ref_model = None
        if m.lora_rank:
            try:
                model = apply_lora(
                    model,
                    rank=m.lora_rank,
                    alpha=m.lora_alpha,
                    dropout=m.lora_dropout,
                    target_modules=m.lora_target_modules,
                    include_vision=m.lora_vision,
                )
            except ValueError as exc:  # a target name no linear layer has
                raise ConfigError(f"model.lora_target_modules: {exc}") from None
            if m.freeze_vision:  # peft made every adapter trainable, the tower's too
                freeze_vision(model)
            self.policy.model = model
        elif needs_ref:
            ref = copy.deepcopy(model).eval()
            ref.requires_grad_(False)
            if st.compute_dtype != torch.float32:
                ref.to(st.compute_dtype)  # forward-only: no master weights needed
            self.ref_model = st.wrap(ref)
        self.needs_ref = needs_ref
        if m.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model = st.wrap(model)
        model.train()
        return model

    # ------------------------------------------------------------------ helpers
    def _lr_lambda(self, step: int) -> float:
        o = self.cfg.optim
        warm = min(1.0, (step + 1) / o.warmup_steps) if o.warmup_steps else 1.0
        if o.lr_schedule == "cosine" and self.cfg.steps > 0:
            return warm * 0.5 * (1 + math.cos(math.pi * min(step, self.cfg.steps) / self.cfg.steps))
        return warm

    @property
    def prompts_per_step(self) -> int:
        return self.cfg.prompts_per_step

    def _generate(self, prompts: list[Any], n: int, step: int, global_offset: int) -> Any:
        """Generate in chunks of ``gen_batch_size`` rollouts, each seeded by (step, global index of its first
        prompt): samples then do not depend on how the prompts are split over ranks or resumed runs."""
        r = self.cfg.rollout
        per = max(1, r.gen_batch_size // n)
        parts = []
        # eval mode: with gradient checkpointing, transformers turns the KV cache off in training mode
        self.model.eval()
        try:
            with (
                self.strategy.gathered(self.model) if self.engine.shares_weights else contextlib.nullcontext()
            ):
                parts = self._generate_chunks(prompts, n, step, global_offset, per)
        finally:
            self.model.train()
        return concat_batches(parts)

    def _generate_chunks(self, prompts: list[Any], n: int, step: int, global_offset: int, per: int) -> list:
        r = self.cfg.rollout
        parts = []
        for start in range(0, len(prompts), per):
            parts.append(
                self.engine.generate(
                    prompts[start : start + per],
                    n=n,
                    temperature=r.temperature,
                    top_p=r.top_p,
                    top_k=0,
                    max_new_tokens=r.max_new_tokens,
                    seed=_step_seed(self.cfg.seed, step, 1 + global_offset + start),
                    return_logprobs=self.want_sampler_logprobs,
                )
            )
        return parts

    def _score(self, responses: list[str], records: list[Any]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        rc = self.cfg.reward
        res = score_batch(
            self.reward,
            responses,
            [r.to_columns() for r in records],
            timeout_s=rc.timeout_s,
            num_workers=rc.num_workers,
            binarize_threshold=rc.binarize_threshold,
            require_unit_interval=self.spec.use_tracker,
            max_response_chars=rc.max_response_chars,
        )
        valid = torch.tensor([s is not None for s in res.scores], dtype=torch.bool)
        rewards = torch.tensor([float(s) if s is not None else 0.0 for s in res.scores], dtype=torch.float32)
        self.counters["reward_errors"] += res.n_errors
        self.counters["reward_timeouts"] += res.n_timeouts
        self._report_reward_failures(res, len(responses))
        return rewards, valid, res

    def _report_reward_failures(self, res: Any, n: int) -> None:
        """The first failure of each kind: one console line, and its traceback in the run's log file."""
        for kind, (msg, tb) in res.first_failures.items():
            if kind in self._failure_kinds:
                continue
            self._failure_kinds.add(kind)
            if not dist.is_main():
                continue
            log.warning(
                "reward failure at step %d (%d errors, %d timeouts of %d samples): %s — first of its kind; "
                "its traceback is in %s",
                self.step,
                res.n_errors,
                res.n_timeouts,
                n,
                msg,
                self.run_dir / RUN_LOG,
            )
            runlog.error("reward failure at step %d: %s\n%s", self.step, msg, tb.rstrip() or "(no traceback)")

    # ------------------------------------------------------------------ tracker initialisation (§1)
    def initialize_tracker(self) -> dict[str, float]:
        """One rollout per training prompt of the starting policy (MSSR), or n₀ (SPO), before step 1."""
        a = self.cfg.algorithm
        if self.tracker is None or a.tracker_init == "none" or self.tracker_initialized:
            return {}
        t0 = time.perf_counter()
        n = 1 if a.tracker_init == "online" else a.spo_init_rollouts
        all_idx = list(range(len(self.train_prompts)))
        pad = (-len(all_idx)) % dist.world_size()
        local = dist.shard(all_idx + all_idx[:pad])
        outcomes: dict[str, list[float]] = {}
        totals = torch.zeros(3, dtype=torch.float64)  # reward errors, timeouts, generated response tokens
        chunk = max(1, self.cfg.rollout.gen_batch_size // n) * 8
        for start in range(0, len(local), chunk):
            idx = local[start : start + chunk]
            batch = self._generate(
                [self.train_prompts[i] for i in idx], n, 0, dist.rank() * len(local) + start
            )
            recs = [self.train_records[idx[j]] for j in batch.prompt_index.tolist()]
            rewards, valid, res = self._score(batch.response_text, recs)
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
        if a.tracker_init == "online":
            self.tracker.init_from_outcomes(merged)
        else:
            thr = a.reward_threshold
            self.tracker.init_spo(
                {k: sum(r > thr for r in v) for k, v in merged.items() if len(v) == n}, n0=n
            )
        self.counters["init_rollouts"] += len(all_idx) * n
        self.tracker_initialized = True
        m = self.tracker.metrics()
        totals = dist.all_reduce_sum(totals)
        self.counters["init_gen_tokens"] += int(totals[2])
        return {
            "init/rollouts": float(len(all_idx) * n),
            "init/p_hat_mean": m["p_hat_mean"],
            "init/reward_errors": float(totals[0]),
            "init/reward_timeouts": float(totals[1]),
            "init/gen_tokens": float(totals[2]),
            "init/time_s": time.perf_counter() - t0,
        }

    # ------------------------------------------------------------------ the step
    def sample_prompts(self, step: int) -> list[int]:
        weights = None
        if self.cfg.algorithm.sampler == "prioritized":
            p_hat = (
                self.tracker.baseline([p.key for p in self.train_prompts])
                if self.tracker
                else torch.full((len(self.train_prompts),), 0.5)
            )
            weights = spo_priority_weights(p_hat, eps=self.cfg.algorithm.priority_eps)
        return self.sampler.sample(self.prompts_per_step, weights)

    def rollout(self, step: int, global_idx: list[int]) -> StepData:
        local_idx = dist.shard(global_idx)
        batch = self._generate(
            [self.train_prompts[i] for i in local_idx],
            self.spec.rollouts_per_prompt,
            step,
            dist.rank() * len(local_idx),
        )
        prompt_ids = torch.tensor([local_idx[j] for j in batch.prompt_index.tolist()], dtype=torch.long)
        records = [self.train_records[i] for i in prompt_ids.tolist()]
        empty = torch.zeros(len(batch))
        return StepData(batch, records, prompt_ids, empty, empty.bool(), batch.response_mask.float())

    def score(self, d: StepData) -> dict[str, float]:
        d.rewards, d.valid, res = self._score(d.batch.response_text, d.records)
        mask = d.batch.response_mask.float() * d.valid[:, None].float()
        if self.cfg.rollout.mask_truncated:
            mask = mask * (~d.batch.truncated)[:, None].float()
        d.loss_mask = mask
        out = {
            f"reward/{k}": float(
                sum(v for v in vals if v is not None) / max(1, sum(v is not None for v in vals))
            )
            for k, vals in res.extras.items()
        }
        out["reward/errors"] = float(res.n_errors)
        out["reward/timeouts"] = float(res.n_timeouts)
        return out

    def compute_old_logprobs(self, d: StepData) -> dict[str, float]:
        """Old log-probs, the shaping entropy and the sampler/trainer comparison (docs/rollout.md "Old
        log-probs"). From the sampler (``self.old_from_sampler``) no forward pass is run unless the full-vocabulary
        entropy is needed; otherwise the trainer's teacher-forced pass gives them. Where both exist the mismatch
        is logged (``rollout/logprob_diff_{mean,max}``), and with ``rollout.tis_cap`` the truncated
        importance weights min(π_old/π_sampler, C) are kept for the loss (``rollout/tis_*``)."""
        mode = "full" if self.spec.shaping and self.cfg.algorithm.shaping_entropy == "full" else "sampled"
        mask = d.batch.response_mask.float()
        lp = d.batch.rollout_logprobs
        if self.old_from_sampler and lp is None:
            raise RuntimeError("rollout.old_logprobs=sampler: the engine returned no log-probs")
        sampler = lp.cpu().float() * mask if lp is not None else None
        trainer, full = None, None
        if not (self.old_from_sampler and mode == "sampled"):
            with torch.no_grad(), self.strategy.gathered(self.model):
                out = compute_logprobs(
                    self.model,
                    d.batch,
                    micro_batch_size=self.cfg.optim.micro_batch_size,
                    entropy=mode,
                    share_prompts=self.cfg.rollout.share_prompts,
                    micro_batches=self._pass_plan(d),
                )
            trainer, full = out.logprobs.cpu().float(), out.entropy
        d.old_logprobs = sampler if self.old_from_sampler else trainer
        d.sampled_entropy = sampled_token_entropy(d.old_logprobs) * mask
        d.entropy = full.cpu() if full is not None else d.sampled_entropy
        if (
            sampler is None
            or trainer is None
            or (self.engine.shares_weights and self.cfg.rollout.tis_cap is None)
        ):
            return {}
        sel = d.batch.response_mask > 0
        delta = (trainer - sampler)[sel].double()  # log(π_trainer / π_sampler) per response token
        stats = [delta.abs().sum(), torch.tensor(float(delta.numel()), dtype=torch.float64)]
        top = [delta.abs().max() if delta.numel() else torch.zeros((), dtype=torch.float64)]
        cap = self.cfg.rollout.tis_cap
        if cap is not None:
            d.is_weights = truncated_is_weights(trainer, sampler, mask, cap)
            w = d.is_weights[sel].double()
            stats += [w.sum(), (delta > math.log(cap)).double().sum()]
            top += [w.max() if w.numel() else torch.zeros((), dtype=torch.float64)]
        stats = dist.all_reduce_sum(torch.stack(stats))
        top = dist.all_reduce_max(torch.stack(top))
        n = stats[1].clamp(min=1)
        out_metrics = {
            "rollout/logprob_diff_mean": float(stats[0] / n),
            "rollout/logprob_diff_max": float(top[0]),
        }
        if cap is not None:
            out_metrics.update(
                {
                    "rollout/tis_weight_mean": float(stats[2] / n),
                    "rollout/tis_weight_max": float(top[1]),
                    "rollout/tis_capped_frac": float(stats[3] / n),
                }
            )
        return out_metrics

    def compute_ref_logprobs(self, d: StepData) -> None:
        """Log-probs under the starting policy: the frozen copy, or under LoRA the policy with its adapters
        disabled (no second copy of the weights)."""
        if not self.needs_ref:
            return
        model = self.ref_model if self.ref_model is not None else self.model
        with torch.no_grad(), self.strategy.gathered(model), adapters_disabled(model):
            d.ref_logprobs = compute_logprobs(
                model,
                d.batch,
                micro_batch_size=self.cfg.optim.micro_batch_size,
                share_prompts=self.cfg.rollout.share_prompts,
                micro_batches=self._pass_plan(d),
            ).logprobs.cpu()

    def gather(self, d: StepData) -> None:
        """Rewards, validity, keys, groups and loss lengths of every rank's rows, so that advantage statistics
        and the tracker are global."""
        d.gathered = Gathered(
            keys=[k for part in dist.all_gather_objects(list(d.batch.keys)) for k in part],
            rewards=dist.all_gather_cat(d.rewards),
            valid=dist.all_gather_cat(d.valid),
            groups=dist.all_gather_cat(d.prompt_ids),
            lengths=dist.all_gather_cat(d.loss_mask.sum(-1)),
        )

    def compute_advantages(self, d: StepData) -> dict[str, float]:
        """The registry estimator over the gathered valid rows (tracker baselines from before this step's
        update), then entropy shaping of this rank's rows."""
        a, g = self.cfg.algorithm, d.gathered
        metrics: dict[str, float] = {}
        idx = torch.nonzero(g.valid).flatten()
        scores = torch.zeros(len(g.rewards))
        if len(idx):
            t_max = int(g.lengths.max().item()) if len(g.lengths) else 1
            synth_mask = (torch.arange(max(1, t_max))[None, :] < g.lengths[idx][:, None]).float()
            kwargs: dict[str, Any] = {"group_ids": g.groups[idx], **a.estimator_kwargs()}
            if self.tracker is not None:
                kwargs["baselines"] = self.tracker.baseline([g.keys[i] for i in idx.tolist()])
            out = compute_advantages(self.spec.advantage, g.rewards[idx], synth_mask, **kwargs)
            scores[idx] = out.scores
            metrics.update({f"adv/{k}": v for k, v in out.metrics.items() if k != "n_groups"})
            if "zero_std_frac" in out.metrics:
                metrics["grpo/zero_std_frac"] = out.metrics["zero_std_frac"]
        b = len(d.rewards)  # this rank's rows of the global arrays
        adv = scores[dist.rank() * b : (dist.rank() + 1) * b][:, None] * d.loss_mask
        d.unshaped_advantages = adv
        if self.spec.shaping:
            shaped = shape_advantages(adv, d.entropy, d.loss_mask, alpha=a.shaping_alpha, kappa=a.shaping_cap)
            adv = shaped.advantages
            metrics.update({f"mssr/{k}": v for k, v in shaped.metrics.items()})
        d.advantages = adv
        return metrics

    def update_tracker(self, d: StepData) -> dict[str, float]:
        if self.tracker is None:
            return {}
        g = d.gathered
        kl = None
        if self.rho_needs == "kl":
            per = per_sample_kl(d.old_logprobs, d.ref_logprobs, d.loss_mask)
            sums = dist.all_reduce_sum(torch.stack([(per * d.valid).sum(), d.valid.float().sum()]).double())
            kl = float(sums[0] / sums[1].clamp(min=1))
        rho = self.rho(len(g.keys), kl=kl, divergence=d.drift)
        rewards = [float(r) if v else None for r, v in zip(g.rewards.tolist(), g.valid.tolist(), strict=True)]
        self.tracker.update(g.keys, rewards, rho)
        if dist.is_distributed():
            self._check_tracker_consistency()
        m = self.tracker.metrics()
        out = {"mssr/rho": float(rho.mean()), "mssr/p_hat_mean": m["p_hat_mean"], "mssr/neff": m["neff"]}
        if kl is not None:
            out["mssr/kl_rollout_ref"] = kl
            out["mssr/kl_window_mean"] = self.rho.window_mean
        return out

    def _check_tracker_consistency(self) -> None:
        """Every rank must hold the same tracker (they see the same gathered rewards); stop loudly if not."""
        import hashlib

        st = self.tracker.state_dict()
        h = hashlib.sha256(
            repr(st["keys"]).encode() + st["alpha"].numpy().tobytes() + st["beta"].numpy().tobytes()
        )
        digests = dist.all_gather_objects(h.hexdigest())
        if len(set(digests)) != 1:
            raise RuntimeError(f"value trackers diverged across ranks at step {self.step}: {digests}")

    def compute_policy_drift(self, d: StepData) -> None:
        """SPO's D(x) for the per-prompt ρ: each prompt's previously stored response re-scored by the policy
        that sampled this step (before this step's update), against its log-probs when it was generated; then
        this step's responses replace the stored ones. Stored responses reuse this step's prompt encoding."""
        if self.response_store is None:
            return
        from mssr.algos import policy_drift

        keys = list(d.batch.keys)
        drift = torch.full((len(keys),), float("nan"), dtype=torch.float64)
        rows = [j for j, k in enumerate(keys) if self.response_store.get(k) is not None]
        if rows:
            sub = d.batch.select(rows)
            t = sub.response_ids.shape[1]
            stored = [self.response_store.get(keys[j]) for j in rows]
            width = max(t, max(int(ids.numel()) for ids, _ in stored))
            ids = torch.full((len(rows), width), int(sub.pad_token_id), dtype=torch.long)
            mask = torch.zeros(len(rows), width)
            for i, (sid, _) in enumerate(stored):
                ids[i, : sid.numel()] = sid
                mask[i, : sid.numel()] = 1
            with torch.no_grad(), self.strategy.gathered(self.model):
                now = compute_logprobs(
                    self.model,
                    sub.with_responses(ids, mask),
                    micro_batch_size=self.cfg.optim.micro_batch_size,
                ).logprobs.cpu()
            for i, j in enumerate(rows):
                then = stored[i][1]
                drift[j] = policy_drift(then, now[i, : then.numel()].double())
        for j, k in enumerate(keys):
            if d.valid[j]:
                m = d.batch.response_mask[j] > 0
                self.response_store.put(k, d.batch.response_ids[j][m], d.old_logprobs[j][m])
        d.drift = torch.cat([p for p in dist.all_gather_objects(drift)])

    def _padding_rows(self, lengths: tuple[list[int], list[int]], n: int) -> list[int]:
        """The rows of a lockstep padding micro-batch (loss weight 0): row-count batching keeps its old
        micro-batch of ``micro_batch_size`` rows; under a token budget, the shortest row."""
        if self.cfg.optim.micro_batch_tokens is None:
            return list(range(min(self.cfg.optim.micro_batch_size, n)))
        p, r = lengths
        return [min(range(n), key=lambda i: p[i] + r[i])]

    def _pass_plan(self, d: StepData) -> list[list[int]] | None:
        """Micro-batches of a no-gradient pass (old / reference log-probs) under ``optim.micro_batch_tokens``
        (None: row-count batching), padded to the same count on every rank where forwards must be in lockstep."""
        o = self.cfg.optim
        if o.micro_batch_tokens is None:
            return None
        if d.pass_plan is not None:  # once per step: the old-log-prob and reference passes share it
            return d.pass_plan
        lengths = row_lengths(d.batch)
        plan = plan_micro_batches(
            range(len(d.rewards)), *lengths, max_rows=o.micro_batch_size, max_tokens=o.micro_batch_tokens
        )
        if self.strategy.lockstep_forwards:
            n = int(dist.all_reduce_max(torch.tensor([len(plan)]))[0])
            plan += [self._padding_rows(lengths, len(d.rewards))] * (n - len(plan))
        d.pass_plan = plan
        return plan

    def update_policy(self, step: int, d: StepData) -> dict[str, float]:
        """One pass over the rollout batch in mini-batches of whole prompts (docs/method.md §5)."""
        o = self.cfg.optim
        n = self.spec.rollouts_per_prompt
        n_local = len(d.rewards) // n
        n_global = n_local * dist.world_size()
        n_updates = o.updates_per_step or max(1, math.ceil(self.prompts_per_step / o.mini_batch_prompts))
        n_updates = min(n_updates, n_global)
        # one global shuffle of the step's prompts, identical on every rank; each mini-batch is a set of global
        # prompts and every rank takes its own rows of it (so mini-batches do not depend on the world size)
        g = torch.Generator().manual_seed(_step_seed(self.cfg.seed, step, 77))
        order = torch.randperm(n_global, generator=g).tolist()
        first = dist.rank() * n_local
        chunks = [
            [p - first for p in order[i::n_updates] if first <= p < first + n_local] for i in range(n_updates)
        ]
        sums: dict[str, float] = {}
        weights: dict[str, float] = {}
        grad_norms = []
        measured = taken = 0  # mini-batches forwarded / updated (target-KL early stopping may end the pass)
        kl_stopped = False
        # the lr this step's updates use (logged as actor/lr; scheduler.step() below sets the next step's)
        lr_used = self.scheduler.get_last_lr()[0]
        lengths = row_lengths(d.batch)
        self.model.train()
        for prompt_chunk in chunks:
            rows = sorted(r for p in prompt_chunk for r in range(p * n, (p + 1) * n))
            mask = d.loss_mask[rows]
            counts = dist.all_reduce_sum(
                torch.tensor([mask.sum(), (mask.sum(-1) > 0).sum()], dtype=torch.float64)
            )
            norm = dict(global_tokens=counts[0].item(), global_seqs=counts[1].item())
            micros = plan_micro_batches(
                rows, *lengths, max_rows=o.micro_batch_size, max_tokens=o.micro_batch_tokens
            )
            n_micro = len(micros)
            if self.strategy.lockstep_forwards:  # same number of forwards on every rank (FSDP collectives)
                n_micro = int(dist.all_reduce_max(torch.tensor([n_micro]))[0])
            self.optimizer.zero_grad(set_to_none=True)
            total = 0.0
            kl_num = 0.0  # token-weighted k1 KL(π_old ‖ π_θ) of this mini-batch, before its update
            for i in range(n_micro):
                padding = i >= len(micros)
                micro = micros[i] if not padding else self._padding_rows(lengths, len(d.rewards))
                loss, terms = self._micro_loss(d, micro, norm, padding=padding)
                loss.backward()
                if padding:
                    continue
                total += float(loss.detach())
                w = float(d.loss_mask[micro].sum())
                kl_num += terms.get("actor/ppo_kl", 0.0) * w
                for k, v in terms.items():
                    if k in _TOKEN_WEIGHTED:
                        sums[k] = sums.get(k, 0.0) + v * w
                        weights[k] = weights.get(k, 0.0) + w
                    else:  # loss terms are partial sums of the mini-batch loss: add them up
                        sums[k] = sums.get(k, 0.0) + v
            measured += 1
            if o.target_kl is not None:  # PPO's early stopping: every rank sees the same global KL
                kl = float(dist.all_reduce_sum(torch.tensor([kl_num], dtype=torch.float64))[0])
                if kl / max(norm["global_tokens"], 1.0) > 1.5 * o.target_kl:
                    self.optimizer.zero_grad(set_to_none=True)
                    kl_stopped = True
                    break
            self.strategy.reduce_grads(self.params)
            gn = self.strategy.clip_grad_norm(self.params, self.grad_clip)
            total_all = float(dist.all_reduce_sum(torch.tensor([total], dtype=torch.float64))[0])
            if not (math.isfinite(total_all) and torch.isfinite(gn)):
                self.optimizer.zero_grad(set_to_none=True)
                self.counters["skipped_updates"] += 1
            else:
                self.optimizer.step()
            taken += 1
            grad_norms.append(float(gn))
        with warnings.catch_warnings():  # every update of the step may have been skipped (non-finite)
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.scheduler.step()
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

    def _micro_loss(
        self, d: StepData, micro: list[int], norm: dict[str, float], *, padding: bool = False
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The objective of rows ``micro`` (forwards in the compute dtype). A padding micro-batch (a rank with
        fewer rows than another under FSDP) runs the same forwards with an empty mask and weight 0."""
        a = self.cfg.algorithm
        # under FSDP every micro-batch must run the same forwards on every rank: one plain forward each
        share = self.cfg.rollout.share_prompts and not self.strategy.lockstep_forwards
        mb = d.batch.select(micro).to(self.device)
        m = d.loss_mask[micro].to(self.device)
        if padding:
            m = torch.zeros_like(m)
        with self.strategy.autocast():
            lp = compute_logprobs(
                self.model, mb, entropy="none", requires_grad=True, share_prompts=share, device=self.device
            ).logprobs
            lp_text = None
            if self.spec.crossmodal_coef > 0:
                lp_text = compute_logprobs(
                    self.model,
                    mb.text_only(),
                    entropy="none",
                    requires_grad=True,
                    share_prompts=share,
                    device=self.device,
                ).logprobs
        out = rl_objective(
            lp,
            d.old_logprobs[micro].to(self.device),
            d.advantages[micro].to(self.device),
            m,
            self.objective_weights,
            ref_logprob=d.ref_logprobs[micro].to(self.device) if self.spec.kl_coef > 0 else None,
            is_weights=d.is_weights[micro].to(self.device) if d.is_weights is not None else None,
            logprob_text=lp_text,
            agg_mode=a.loss_agg_mode,
            horizon=float(self.cfg.rollout.max_new_tokens),
            **norm,
        )
        loss = out.loss * 0.0 if padding else out.loss
        return loss, out.metrics

    def train_step(self, step: int) -> dict[str, float]:
        t: dict[str, float] = {}
        with timed(t, "step"):
            with timed(t, "gen"):
                d = self.rollout(step, self.sample_prompts(step))
            if self.engine.sleeps:
                with timed(t, "sleep"):  # the engine's GPU memory is the trainer's until after the update
                    self.engine.before_update()
            with timed(t, "score"):
                metrics = self.score(d)
            with timed(t, "logprob"):
                metrics.update(self.compute_old_logprobs(d))
            with timed(t, "ref"):
                self.compute_ref_logprobs(d)
                self.compute_policy_drift(d)
            self.gather(d)
            metrics.update(self.compute_advantages(d))
            if self.shaping_probe is not None and self.shaping_probe.due(step):
                with timed(t, "probe"):
                    metrics.update(self.shaping_probe(self, d, d.unshaped_advantages))
            with timed(t, "update"):
                metrics.update(self.update_policy(step, d))
            if not self.engine.shares_weights:
                with timed(t, "sync"):  # the engine samples the next step from the updated weights
                    self.engine.after_update(self.model)
            metrics.update(self.update_tracker(d))
            metrics.update(self._step_metrics(d))
        metrics.update({f"timing_s/{k}": v for k, v in t.items()})
        n_roll = len(d.rewards) * dist.world_size()
        self.counters["rollouts"] += n_roll
        n_tok = dist.all_reduce_sum(d.batch.response_mask.sum().to(torch.float64).reshape(1))
        self.counters["gen_tokens"] += int(n_tok[0])
        metrics["perf/rollouts_per_s"] = n_roll / t["step"]
        metrics["train/rollouts"] = float(self.counters["rollouts"])
        metrics["train/init_rollouts"] = float(self.counters["init_rollouts"])
        # compute accounting: response tokens generated so far, by the steps and by the tracker initialisation
        metrics["train/gen_tokens"] = float(self.counters["gen_tokens"])
        metrics["train/init_gen_tokens"] = float(self.counters["init_gen_tokens"])
        metrics["train/skipped_updates"] = float(self.counters["skipped_updates"])
        return metrics

    def _step_metrics(self, d: StepData) -> dict[str, float]:
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

    def _watch_collapse(self, metrics: dict[str, float], *, val_scheduled: bool = True) -> dict[str, float]:
        """Live collapse warnings (thresholds: :mod:`mssr.algos.collapse`). Only scheduled validations count,
        so that a run's end (or a resumed run's earlier end) does not change what later steps see."""
        hit_e = self.collapse.update_entropy(self.step, metrics["actor/entropy"])
        hit_v = (
            val_scheduled
            and "val/accuracy" in metrics
            and self.collapse.update_val(self.step, metrics["val/accuracy"])
        )
        if self.cfg.logging.collapse_warning and dist.is_main():
            if hit_e:
                log.warning(
                    "step %d: entropy collapse (smoothed entropy < 50%% of its peak for 3 steps)", self.step
                )
            if hit_v:
                log.warning(
                    "step %d: validation accuracy collapse (> 0.1 below its best for 3 evaluations)",
                    self.step,
                )
        return {
            "collapse/entropy": float(self.collapse.entropy_collapse_step is not None),
            "collapse/val": float(self.collapse.val_collapse_step is not None),
        }

    # ------------------------------------------------------------------ validation
    def validate(self, *, scheduled: bool = True) -> dict[str, float]:
        """Validation accuracy. An unscheduled one (the last step of a run, not a multiple of ``val.every``)
        does not enter ``best_val``, which a checkpoint carries on: a run stopped and resumed then ends like a
        straight one (the summary's best includes the final accuracy either way)."""
        if not self.val_prompts:
            return {}
        self.model.eval()
        with self.strategy.gathered(self.model):
            res = self._evaluate()
        self.model.train()
        self.last_val = res.accuracy
        if scheduled:
            self.best_val = res.accuracy if self.best_val is None else max(self.best_val, res.accuracy)
        return {
            "val/accuracy": res.accuracy,
            "val/n": float(res.n),
            "val/response_length": res.metrics["response_length"],
            "val/truncated_frac": res.metrics["truncated_frac"],
        }

    def _evaluate(self) -> Any:
        return evaluate(
            self.engine,
            self.val_prompts,
            self.val_records,
            reward=self.reward,
            greedy=self.cfg.val.greedy,
            temperature=self.cfg.rollout.temperature,
            max_new_tokens=self.cfg.rollout.max_new_tokens,
            batch_size=self.cfg.val.batch_size,
            seed=_step_seed(self.cfg.seed, self.step, 999),
            timeout_s=self.cfg.reward.timeout_s,
            num_workers=self.cfg.reward.num_workers,
            max_response_chars=self.cfg.reward.max_response_chars,
        )

    # ------------------------------------------------------------------ checkpoints
    @property
    def ckpt_root(self) -> Path:
        return self.run_dir / "checkpoints"

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "tracker": self.tracker.state_dict() if self.tracker else None,
            "tracker_initialized": self.tracker_initialized,
            "rho": self.rho.state_dict() if self.rho else None,
            "response_store": self.response_store.state_dict() if self.response_store else None,
            "counters": dict(self.counters),
            "best_val": self.best_val,
            "first_val": self.first_val,
            "collapse": self.collapse.state_dict(),
            "last_val": self.last_val,
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
            "base_source": str(self.base_source),
            "version": __version__,
        }

    def save_checkpoint(self) -> Path | None:
        """Every rank takes part (sharded state and the full-weights export are collectives under FSDP); rank 0
        writes the rest and publishes the directory atomically."""
        dist.barrier()
        main = dist.is_main()
        tmp: Path | str | None = None
        if main:
            try:
                tmp = prepare_checkpoint(self.ckpt_root, self.step)
            except OSError as exc:
                tmp = self._checkpoint_error(exc)
        tmp = dist.broadcast_object(tmp)
        if isinstance(tmp, str):  # every rank stops with rank 0's message
            raise RunError(tmp)
        state = self.state_dict()
        if self.strategy.sharded:
            self.strategy.save_sharded(tmp / "sharded", self.model, self.optimizer)
            del state["optimizer"]  # in sharded/
        export = self._export_state_dict()
        path, error = None, None
        if main:
            writing = tmp / "policy"  # the file being written, for the error message
            try:
                self._save_export(writing, export)
                if is_lora(self.model):
                    writing = tmp / "adapter.pt"
                    save_state(writing, adapter_state_dict(self.model))
                writing = tmp / "trainer_state.pt"
                save_state(writing, state)
                writing = tmp / "config.yaml"
                writing.write_text(dump_yaml(self.cfg), encoding="utf-8")
                writing = self.ckpt_root / f"step_{self.step:06d}"
                path = publish_checkpoint(
                    self.ckpt_root, self.step, tmp, keep_last=self.cfg.checkpoint.keep_last
                )
            except (OSError, RuntimeError) as exc:  # a full disk: torch says "basic_ios::clear"
                shutil.rmtree(tmp, ignore_errors=True)
                error = self._checkpoint_error(exc, getattr(exc, "filename", None) or writing)
        error = dist.broadcast_object(error)
        if error:
            raise RunError(error)
        return path

    def _checkpoint_error(self, exc: BaseException, writing: Path | str | None = None) -> str:
        try:
            free = f"{shutil.disk_usage(self.ckpt_root).free / 2**20:.0f} MB free"
        except OSError:
            free = "free space unknown"
        latest = latest_checkpoint(self.ckpt_root)
        where = f" (writing {Path(writing).name})" if writing else ""
        return (
            f"could not write the checkpoint of step {self.step} to {self.ckpt_root}{where} ({free}): "
            f"{getattr(exc, 'strerror', None) or exc}; the latest complete checkpoint is "
            f"{latest.name if latest else 'none'}"
        )

    def _export_state_dict(self) -> dict[str, torch.Tensor] | None:
        """The full weights of a plain model on rank 0 (LoRA merged in; gathered under FSDP)."""
        if is_lora(self.model):
            return merged_state_dict(self.model) if dist.is_main() else None
        if self.strategy.sharded:
            return self.strategy.full_state_dict(self.model)
        return None  # the policy's own state dict

    def _save_export(self, path: Path, state: dict[str, torch.Tensor] | None) -> None:
        """``save_pretrained`` of a loadable policy (model + processor + ``mssr_policy.json``)."""
        if is_lora(self.model):
            save_merged(self.policy, path)
        else:
            self.policy.save(path, state_dict=state)

    def load_checkpoint(self, path: Path) -> None:
        from mssr.models import load_policy

        st = load_state(path / "trainer_state.pt")
        if self.strategy.sharded:
            if not (path / "sharded").is_dir():
                raise RuntimeError(
                    f"{path} has no sharded/ state: it was not written under parallel.strategy=fsdp"
                )
            self.strategy.load_sharded(path / "sharded", self.model, self.optimizer)
        else:
            if is_lora(self.model):
                load_adapter_state_dict(self.model, load_state(path / "adapter.pt"))
            else:
                # from_pretrained applies the checkpoint-format key mapping (e.g. visual.* -> model.visual.*)
                saved = load_policy(path / "policy", dtype=self.strategy.param_dtype).model
                self.model.load_state_dict(saved.state_dict())
                del saved
            self.optimizer.load_state_dict(st["optimizer"])
        self.step = int(st["step"])
        self.scheduler.load_state_dict(st["scheduler"])
        self.sampler.load_state_dict(st["sampler"])
        if self.tracker is not None and st["tracker"] is not None:
            self.tracker.load_state_dict(st["tracker"])
        self.tracker_initialized = bool(st["tracker_initialized"])
        if self.rho is not None and st["rho"] is not None:
            self.rho.load_state_dict(st["rho"])
        if self.response_store is not None and st["response_store"] is not None:
            self.response_store.load_state_dict(st["response_store"])
        self.counters.update(st["counters"])
        self.best_val, self.last_val = st["best_val"], st["last_val"]
        self.first_val = st.get("first_val")
        self.collapse.load_state_dict(st["collapse"])
        torch.set_rng_state(st["rng"]["torch"])
        random.setstate(st["rng"]["python"])
        if not self.engine.shares_weights:  # the engine started from the pre-resume weights
            self.engine.sync(self.model)

    def maybe_resume(self) -> Path | None:
        """Load the checkpoint ``checkpoint.resume`` names (auto/force: the latest of this run). Refused with a
        :class:`RunError`: ``never`` into a directory that holds an earlier run, and (unless ``force``) a
        checkpoint whose config differs in what the run means."""
        r = self.cfg.checkpoint.resume
        if r == "never":
            earlier = run_has_data(self.run_dir)
            if earlier:
                raise RunError(
                    f"output_dir {self.run_dir} already holds a run ({earlier}) and checkpoint.resume=never: "
                    "choose a new output_dir, delete the old run, or continue it with checkpoint.resume=auto"
                )
            return None
        path = latest_checkpoint(self.ckpt_root) if r in ("auto", "force") else Path(r)
        if path is None:
            return None
        if r != "force":
            diff = resume_config_diff(path / "config.yaml", self.cfg)
            if diff:
                shown = "; ".join(diff[:6]) + (f"; and {len(diff) - 6} more" if len(diff) > 6 else "")
                raise RunError(
                    f"checkpoint {path} was written by a run with another config ({shown}): choose a new "
                    "output_dir, or continue it anyway with checkpoint.resume=force"
                )
        try:
            self.load_checkpoint(path)
        except UnsafeCheckpointError as exc:
            raise RunError(str(exc)) from None
        self.resumed_from = path
        return path

    # ------------------------------------------------------------------ the loop
    def _on_signal(self, signum: int, _frame: Any) -> None:
        """SIGINT / SIGTERM / SIGUSR1: finish the current step, checkpoint and stop (decided by all ranks at
        the step boundary). A second SIGINT stops at once, without a checkpoint of the step in progress."""
        if self._stop_signal and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not self._stop_signal:
            self._stop_signal = signum

    def _stop_requested(self) -> int:
        """The signal (number) that stops the run, agreed by every rank, or 0: one all-reduce per step, so all
        ranks leave the loop after the same step and write the same checkpoint together."""
        flag = torch.tensor([self._stop_signal], dtype=torch.int64, device=self._flag_device)
        sig = int(dist.all_reduce_max(flag)[0]) if dist.is_distributed() else self._stop_signal
        return sig

    @property
    def _flag_device(self) -> torch.device:
        return self.device if dist.is_distributed() and self.device.type == "cuda" else torch.device("cpu")

    def _checkpoint_bytes(self) -> int:
        """About what one checkpoint takes on disk: the weights (export) and the optimizer's two moments."""
        n = sum(p.numel() * p.element_size() for p in self.model.parameters())
        t = sum(p.numel() * p.element_size() for p in self.params)
        return n + 2 * t + (16 << 20)

    def _say(self, msg: str) -> None:
        """A line for the user (stderr, rank 0) that also goes to the run's log file."""
        if dist.is_main():
            print(f"mssr train: {msg}", file=sys.stderr, flush=True)
            runlog.info(msg)

    def _limit_prompts(self) -> None:
        """Apply ``data.max_prompt_tokens`` (default: the model's context less ``rollout.max_new_tokens``)."""
        from mssr.data.record import DataError
        from mssr.trainer.setup import limit_prompt_length, model_context

        limit = self.cfg.data.max_prompt_tokens
        if limit is None:
            context = model_context(self.policy.model)
            limit = context - self.cfg.rollout.max_new_tokens if context else None
        if limit is None:
            return
        tok = getattr(self.policy.processor, "tokenizer", self.policy.processor)
        on_error = self.cfg.data.on_error
        self.train_records, self.train_prompts = limit_prompt_length(
            self.train_records, self.train_prompts, tok, limit, on_error=on_error, label="training"
        )
        self.val_records, self.val_prompts = limit_prompt_length(
            self.val_records, self.val_prompts, tok, limit, on_error=on_error, label="validation"
        )
        if not self.train_prompts:
            raise DataError(f"every training prompt is longer than data.max_prompt_tokens={limit}")

    def _take_lock(self) -> None:
        """Rank 0 locks the run directory (before the model and data are built); every rank raises its error."""
        error = None
        if dist.is_main():
            try:
                self._lock = lock_run_dir(self.run_dir)
            except RunError as exc:
                error = str(exc)
        error = dist.broadcast_object(error)
        if error:
            raise RunError(error)

    def _open_run(self) -> None:
        """Rank 0 checks the (locked) run directory and opens run.log; every rank raises rank 0's error, if any."""
        error = None
        if dist.is_main():
            try:
                self._lock = open_run_dir(
                    self.run_dir, self.ckpt_root, checkpoint_bytes=self._checkpoint_bytes(), lock=self._lock
                )
            except RunError as exc:
                self._lock = None  # open_run_dir released it
                error = str(exc)
            else:
                h = logging.FileHandler(self.run_dir / RUN_LOG, encoding="utf-8")
                h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
                runlog.addHandler(h)
                runlog.setLevel(logging.INFO)
                self._runlog_handler = h
                if self._lock.stale:
                    runlog.info("took over the stale lock of %s", self._lock.describe(self._lock.stale))
        error = dist.broadcast_object(error)
        if error:
            raise RunError(error)

    def close(self) -> None:
        """Release the rollout engine's own resources (vLLM: its engine core and its process groups — which
        include destroying the default group under torchrun, so the ranks meet at a barrier first)."""
        engine = getattr(self, "engine", None)  # (a run refused before its engine was built has none)
        if engine is not None and not engine.shares_weights:
            dist.barrier()
        if engine is not None:
            engine.close()
        self._close_run()  # a trainer built but never trained holds its directory's lock until here

    def _close_run(self) -> None:
        h, self._runlog_handler = self._runlog_handler, None
        if h is not None:
            runlog.removeHandler(h)
            h.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _check_rewards(self, metrics: dict[str, float]) -> str | None:
        """A one-line error when too many samples had no usable reward for too many steps in a row."""
        rc = self.cfg.reward
        excluded = metrics["train/excluded_frac"]  # of the gathered rows: the same on every rank
        self._excluded_streak = self._excluded_streak + 1 if excluded > rc.max_excluded_frac else 0
        if not rc.max_excluded_steps or self._excluded_streak < rc.max_excluded_steps:
            return None
        first = next(iter(sorted(self._failure_kinds)), None)
        return (
            f"rewards failed: more than {rc.max_excluded_frac:g} of the samples had no usable reward for "
            f"{self._excluded_streak} steps in a row (step {self.step}: {excluded:.0%} excluded; "
            f"{self.counters['reward_errors']} errors, {self.counters['reward_timeouts']} timeouts so far"
            + (f", first kind: {first}" if first else "")
            + f"); tracebacks in {self.run_dir / RUN_LOG}. Fix the reward, or set reward.max_excluded_frac / "
            "reward.max_excluded_steps=0"
        )

    def train(self) -> dict[str, Any]:
        """Run to ``cfg.steps``; returns a summary (final/best validation accuracy, paths). The run directory
        is locked for the run's life. Raises :class:`TrainingInterrupted` after the checkpoint a stop signal
        asked for, :class:`RunError` for a problem the user fixes (directory, disk, resume, rewards)."""
        self._open_run()
        handlers: dict[int, Any] = {}
        try:
            if _main_thread():
                handlers = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
            return self._train()
        finally:
            for sig, prev in handlers.items():
                signal.signal(sig, prev)
            self._close_run()

    def _train(self) -> dict[str, Any]:
        cfg = self.cfg
        resumed = self.maybe_resume()
        if resumed is not None:
            self._say(f"resumed from step {self.step} (checkpoint {resumed})")
        if dist.is_main():
            (self.run_dir / "config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
            # one line per start or resume: a run resumed on another machine shows it (mssr.environment)
            with (self.run_dir / ENVIRONMENT_LOG).open("a", encoding="utf-8") as f:
                f.write(json.dumps({"step": self.step, **describe_environment()}) + "\n")
            self.logger = MetricsLogger(
                self.run_dir,
                tensorboard=cfg.logging.tensorboard,
                wandb=cfg.logging.wandb,
                wandb_project=cfg.logging.wandb_project,
                config=to_dict(cfg),
                resume_step=self.step,
            )
        progress = Progress(
            cfg.steps,
            self.step,
            enabled=cfg.logging.progress and dist.is_main(),
            description=cfg.algorithm.name,
            every_s=cfg.logging.line_every_s,
            sink=runlog.info,
        )
        last_saved = self.step if resumed else -1
        failure = None
        stop = 0
        try:
            if self.step == 0:
                init = self.initialize_tracker()
                start = {**init}
                if cfg.val.at_start:
                    start.update(self.validate())
                    self.first_val = self.last_val
                if start and self.logger:
                    self.logger.log(0, start)
            while self.step < cfg.steps:
                stop = self._stop_requested()
                if stop:
                    break
                self.step += 1
                metrics = self.train_step(self.step)
                scheduled = bool(cfg.val.every and self.step % cfg.val.every == 0)
                if scheduled or self.step == cfg.steps:
                    metrics.update(self.validate(scheduled=scheduled))
                metrics.update(self._watch_collapse(metrics, val_scheduled=scheduled))
                if self.logger:
                    self.logger.log(self.step, metrics)
                progress.update(self.step, metrics, self.last_val)
                failure = self._check_rewards(metrics)
                if failure:
                    break
                if cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0:
                    self.save_checkpoint()
                    last_saved = self.step
            path = latest_checkpoint(self.ckpt_root) if dist.is_main() else None
            if last_saved != self.step:
                path = self.save_checkpoint()
        finally:
            progress.close()
            if self.logger:
                self.logger.close()
        if failure:
            runlog.error(failure)
            raise RunError(failure)
        if stop and self.step < cfg.steps:
            exc = TrainingInterrupted(stop, self.step, path, cfg.steps)
            runlog.warning(str(exc))
            raise exc
        if dist.is_main() and (self.counters["reward_errors"] or self.counters["reward_timeouts"]):
            msg = (
                f"{self.counters['reward_errors']} reward errors and {self.counters['reward_timeouts']} timeouts "
                f"over the run (samples excluded; first tracebacks in {self.run_dir / RUN_LOG})"
            )
            log.warning(msg)
            runlog.warning(msg)
        best = [v for v in (self.best_val, self.last_val) if v is not None]
        summary = {
            "steps": self.step,
            "stopped_early": self.step < cfg.steps,
            "resumed_from": str(self.resumed_from) if self.resumed_from else None,
            "val_accuracy_start": self.first_val,
            "val_accuracy_final": self.last_val,
            "val_accuracy_best": max(best) if best else None,
            "val_items": len(self.val_records),
            "rollouts": self.counters["rollouts"],
            "init_rollouts": self.counters["init_rollouts"],
            "gen_tokens": self.counters["gen_tokens"],
            "init_gen_tokens": self.counters["init_gen_tokens"],
            "run_dir": str(self.run_dir),
            "world_size": dist.world_size(),
        }
        if dist.is_main() and cfg.logging.plot and (self.run_dir / "metrics.jsonl").exists():
            summary["plot"] = str(
                plot_curves(
                    self.run_dir / "metrics.jsonl",
                    self.run_dir / "curves.png",
                    title=f"{cfg.algorithm.name} · {self.run_dir.name}",
                )
            )
        return summary


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()

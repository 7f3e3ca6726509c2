"""The RL trainer: a thin run loop over a few parts (docs/architecture.md, "The trainer's parts").

- the components, built once from the config (:meth:`RLTrainer.__init__`, with :mod:`mssr.trainer.setup`);
- the step: stages as functions over :class:`~mssr.trainer.step_data.StepData` (:mod:`mssr.trainer.step`,
  :mod:`mssr.trainer.stages`);
- the checkpoints (:class:`~mssr.trainer.checkpointer.Checkpointer`);
- the run's session: lock, ``run.log``, stop signals (:class:`~mssr.trainer.session.RunSession`).

The loop: validation at the start, ``steps`` steps with periodic validation and checkpoints, a final
checkpoint and a summary. Algorithm choices arrive as an :class:`~mssr.algos.AlgorithmSpec`; nothing here
branches on an algorithm's name.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

import torch

from mssr import __version__
from mssr.algos import BetaTracker, PromptSampler, ResponseStore, build_rho_schedule
from mssr.algos.collapse import CollapseDetector
from mssr.algos.objective import ObjectiveWeights
from mssr.config import ConfigError, dump_yaml, to_dict, validated
from mssr.environment import describe as describe_environment
from mssr.evaluation.evaluator import evaluate
from mssr.rewards import build_reward
from mssr.rollout import engine_from_config
from mssr.rollout.engine import default_suppress_token_ids
from mssr.trainer import distributed as dist
from mssr.trainer.checkpoint import UnsafeCheckpointError, latest_checkpoint
from mssr.trainer.checkpointer import Checkpointer
from mssr.trainer.config import TrainConfig
from mssr.trainer.memory import preflight as memory_preflight
from mssr.trainer.metrics_log import MetricsLogger, Progress, plot_curves
from mssr.trainer.parallel import build_strategy
from mssr.trainer.rundir import CONFIG, METRICS, RunError, TrainingInterrupted
from mssr.trainer.session import RUN_LOG, RunSession, runlog, say
from mssr.trainer.setup import build_policy, build_prompts, lr_factor, prepare_model
from mssr.trainer.shaping_probe import ShapingProbe
from mssr.trainer.stages.advantages import initialize_tracker
from mssr.trainer.step import train_step
from mssr.trainer.step_data import step_seed

log = logging.getLogger("mssr.train")
ENVIRONMENT_LOG = "environment.jsonl"  # versions and CPU kernels, one line per (re)start of the run


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


class RLTrainer:
    """Trains a policy with the configured algorithm. ``policy``, ``train_records``, ``val_records`` and
    ``reward`` override what the config would build (the Python API, :func:`mssr.train`).

    Its attributes are the run's parts, which the step's stages read: ``cfg``, ``spec``, ``device``,
    ``strategy``, ``policy``/``model``/``ref_model``, ``engine``, ``reward``, the prompts and records, ``tracker``,
    ``rho``, ``sampler``, ``optimizer``/``scheduler``, ``counters`` and ``step``."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        policy: Any | None = None,
        train_records: list[Any] | None = None,
        val_records: list[Any] | None = None,
        reward: Any | None = None,
    ) -> None:
        # a config built in Python is checked and resolved as a loaded one
        self.cfg = config = validated(config)
        self.spec = config.algorithm.spec()
        self.device = resolve_device(config.device)
        dist.init_from_env(self.device)
        self.run_dir = Path(config.output_dir)
        self.session = RunSession(self.run_dir, self.device)
        try:
            self.session.lock()  # first: a second run into this directory is refused before anything is built
            self._build_model(config, policy)
            self._build_data(config, train_records, val_records, reward)
            self._build_optimizer(config)
        except BaseException:
            self.session.close()  # a run refused while it was being built leaves its directory unlocked
            raise
        self._init_state()

    # ------------------------------------------------------------------ set-up
    def _build_model(self, config: TrainConfig, policy: Any | None) -> None:
        """The policy, the parallel strategy, the tracker and ρ schedule, the model (+ reference), the engine,
        and where the old log-probs come from."""
        if config.threads:
            torch.set_num_threads(config.threads)
        random.seed(config.seed)
        torch.manual_seed(config.seed)
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
        use = self.spec.use_tracker
        self.tracker = BetaTracker(rho_min=a.rho.min, threshold=a.tracker.reward_threshold) if use else None
        self.rho = build_rho_schedule(a.rho.schedule, **a.rho.kwargs()) if use else None
        # what the ρ schedule reads each step: "kl" (rollout vs reference), "divergence" (SPO's D(x)), "none"
        self.rho_needs = self.rho.needs if self.rho is not None else "none"
        self.response_store = ResponseStore() if self.rho_needs == "divergence" else None
        self.needs_ref = self.spec.kl_coef > 0 or self.rho_needs == "kl"
        self.model, self.ref_model = prepare_model(
            config, self.policy, self.strategy, self.device, needs_ref=self.needs_ref
        )
        self.suppress = tuple(default_suppress_token_ids(self.model, self.policy.processor))
        r = config.rollout
        self.engine = engine_from_config(
            r, self.model, self.policy.processor, suppress_token_ids=self.suppress
        )
        # the old log-probs: the sampler's ("auto": only where they are the training forward's — the built-in
        # engine in float32; bf16 sampling and training forwards differ by ~1e-2, another engine's kernels too)
        # or the trainer's own pass. The sampler's are requested whenever they are used or compared with.
        exact = self.engine.shares_weights and self.strategy.compute_dtype == torch.float32
        from_sampler = r.old_logprobs == "sampler" or (
            r.old_logprobs == "auto" and exact and r.tis_cap is None
        )
        self.old_logprobs_from = "sampler" if from_sampler else "trainer"  # rollout.old_logprobs, resolved
        self.want_sampler_logprobs = from_sampler or not self.engine.shares_weights or r.tis_cap is not None

    def _build_data(
        self, config: TrainConfig, train_records: list[Any] | None, val_records: list[Any] | None, reward: Any
    ) -> None:
        """Records and prompts, the reward and the prompt sampler."""
        self.train_records, self.train_prompts, self.val_records, self.val_prompts = build_prompts(
            config, self.policy, train_records, val_records
        )
        spec = reward if reward is not None else config.reward.spec
        self.reward = (
            build_reward(spec, require_clean_end=config.reward.require_clean_end)
            if spec == "accuracy"
            else build_reward(spec)
        )
        self.sampler = PromptSampler(
            len(self.train_prompts), seed=config.seed, mode=config.algorithm.sampler.kind
        )

    def _build_optimizer(self, config: TrainConfig) -> None:
        """AdamW over the trainable parameters, the lr schedule, the loss weights and the checkpointer."""
        o, a = config.optim, config.algorithm
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(config, step)
        )
        self.grad_clip = o.grad_clip
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
            kl_estimator=a.loss.kl_estimator,
            clip_low=a.loss.clip_low,
            clip_high=a.loss.clip_high,
            dual_clip_c=a.loss.dual_clip,
        )
        self.checkpointer = Checkpointer(
            self.run_dir, config, self.strategy, self.policy, self.model, self.optimizer
        )

    def _init_state(self) -> None:
        """The run's bookkeeping (what a checkpoint carries besides weights and optimizer)."""
        config = self.cfg
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
        self.reward_failure_kinds: set[str] = set()
        self._excluded_streak = 0
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

    @property
    def prompts_per_step(self) -> int:
        return self.cfg.prompts_per_step

    @property
    def ckpt_root(self) -> Path:
        return self.checkpointer.root

    def train_step(self, step: int) -> dict[str, float]:
        """One training step (:func:`mssr.trainer.step.train_step`); returns its metrics."""
        return train_step(self, step)

    def initialize_tracker(self) -> dict[str, float]:
        """The value tracker's initialisation before step 1 (:func:`mssr.trainer.stages.advantages.initialize_tracker`)."""
        return initialize_tracker(self)

    # ------------------------------------------------------------------ validation and watches
    def validate(self, *, scheduled: bool = True) -> dict[str, float]:
        """Validation accuracy. An unscheduled one (the last step of a run, not a multiple of ``val.every``)
        does not enter ``best_val``, which a checkpoint carries on: a run stopped and resumed then ends like a
        straight one (the summary's best includes the final accuracy either way)."""
        if not self.val_prompts:
            return {}
        c = self.cfg
        self.model.eval()
        with self.strategy.gathered(self.model):
            res = evaluate(
                self.engine,
                self.val_prompts,
                self.val_records,
                reward=self.reward,
                greedy=c.val.greedy,
                temperature=c.rollout.temperature,
                max_new_tokens=c.rollout.max_new_tokens,
                batch_size=c.val.batch_size,
                seed=step_seed(c.seed, self.step, 999),
                timeout_s=c.reward.timeout_s,
                num_workers=c.reward.num_workers,
                max_response_chars=c.reward.max_response_chars,
            )
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

    def _check_rewards(self, metrics: dict[str, float]) -> str | None:
        """A one-line error when too many samples had no usable reward for too many steps in a row."""
        rc = self.cfg.reward
        excluded = metrics["train/excluded_frac"]  # of the gathered rows: the same on every rank
        self._excluded_streak = self._excluded_streak + 1 if excluded > rc.max_excluded_frac else 0
        if not rc.max_excluded_steps or self._excluded_streak < rc.max_excluded_steps:
            return None
        first = next(iter(sorted(self.reward_failure_kinds)), None)
        return (
            f"rewards failed: more than {rc.max_excluded_frac:g} of the samples had no usable reward for "
            f"{self._excluded_streak} steps in a row (step {self.step}: {excluded:.0%} excluded; "
            f"{self.counters['reward_errors']} errors, {self.counters['reward_timeouts']} timeouts so far"
            + (f", first kind: {first}" if first else "")
            + f"); tracebacks in {self.run_dir / RUN_LOG}. Fix the reward, or set reward.max_excluded_frac / "
            "reward.max_excluded_steps=0"
        )

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The run's state besides the weights: optimizer, schedules, sampler, tracker, counters, RNGs."""
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

    def load_state_dict(self, st: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s bookkeeping (the optimizer is the checkpointer's to load)."""
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

    def save_checkpoint(self) -> Path | None:
        """This step's checkpoint (every rank takes part); its path on rank 0."""
        return self.checkpointer.save(self.step, self.state_dict())

    def load_checkpoint(self, path: Path) -> None:
        """Weights, optimizer and bookkeeping from checkpoint ``path``; a separate engine gets the weights."""
        self.load_state_dict(self.checkpointer.load(path))
        if not self.engine.shares_weights:  # the engine started from the pre-resume weights
            self.engine.sync(self.model)

    def maybe_resume(self) -> Path | None:
        """Load the checkpoint ``checkpoint.resume`` names (:meth:`Checkpointer.to_resume`), if any."""
        path = self.checkpointer.to_resume()
        if path is None:
            return None
        try:
            self.load_checkpoint(path)
        except UnsafeCheckpointError as exc:
            raise RunError(str(exc)) from None
        self.resumed_from = path
        return path

    # ------------------------------------------------------------------ the run
    def close(self) -> None:
        """Release the rollout engine's own resources (vLLM: its engine core and its process groups — which
        include destroying the default group under torchrun, so the ranks meet at a barrier first)."""
        if not self.engine.shares_weights:
            dist.barrier()
        self.engine.close()
        self.session.close()  # a trainer built but never trained holds its directory's lock until here

    def train(self) -> dict[str, Any]:
        """Run to ``cfg.steps``; returns a summary (final/best validation accuracy, paths). The run directory
        is locked for the run's life. Raises :class:`TrainingInterrupted` after the checkpoint a stop signal
        asked for, :class:`RunError` for a problem the user fixes (directory, disk, resume, rewards)."""
        self.session.open(self.ckpt_root, self.checkpointer.size_bytes(self.params))
        try:
            with self.session.stop_signals():
                return self._train()
        finally:
            self.session.close()

    def _start(self) -> Path | None:
        """Resume if asked, write the run's config and environment line, open the metrics log."""
        cfg = self.cfg
        resumed = self.maybe_resume()
        if resumed is not None:
            say(f"resumed from step {self.step} (checkpoint {resumed})")
        if dist.is_main():
            (self.run_dir / CONFIG).write_text(dump_yaml(cfg), encoding="utf-8")
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
        return resumed

    def _train(self) -> dict[str, Any]:
        cfg = self.cfg
        resumed = self._start()
        progress = Progress(
            cfg.steps,
            self.step,
            enabled=cfg.logging.progress and dist.is_main(),
            description=cfg.algorithm.name,
            every_s=cfg.logging.line_every_s,
            sink=runlog.info,
        )
        failure, stop = None, 0
        try:
            if self.step == 0:
                self._log_start()
            failure, stop = self._loop(progress, last_saved=self.step if resumed else -1)
        finally:
            progress.close()
            if self.logger:
                self.logger.close()
        if failure:
            runlog.error(failure)
            raise RunError(failure)
        if stop and self.step < cfg.steps:
            path = latest_checkpoint(self.ckpt_root) if dist.is_main() else None
            exc = TrainingInterrupted(stop, self.step, path, cfg.steps)
            runlog.warning(str(exc))
            raise exc
        return self._summary()

    def _log_start(self) -> None:
        """Step 0: the tracker's initialisation and the starting validation, logged at step 0."""
        start = dict(self.initialize_tracker())
        if self.cfg.val.at_start:
            start.update(self.validate())
            self.first_val = self.last_val
        if start and self.logger:
            self.logger.log(0, start)

    def _loop(self, progress: Progress, *, last_saved: int) -> tuple[str | None, int]:
        """Steps until ``cfg.steps``, a stop signal or failing rewards; then the last checkpoint. Returns the
        reward failure (or None) and the stop signal (or 0)."""
        cfg = self.cfg
        failure, stop = None, 0
        while self.step < cfg.steps:
            stop = self.session.stop_requested()
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
        if last_saved != self.step:
            self.save_checkpoint()
        return failure, stop

    def _summary(self) -> dict[str, Any]:
        """The run's summary (what ``mssr train`` prints), after the reward-failure totals and the plot."""
        cfg = self.cfg
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
        if dist.is_main() and cfg.logging.plot and (self.run_dir / METRICS).exists():
            summary["plot"] = str(
                plot_curves(
                    self.run_dir / METRICS,
                    self.run_dir / "curves.png",
                    title=f"{cfg.algorithm.name} · {self.run_dir.name}",
                )
            )
        return summary

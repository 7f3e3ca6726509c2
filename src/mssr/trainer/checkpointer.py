"""A run's checkpoints: written by every rank together and published atomically by rank 0, read back exactly.

A checkpoint directory ``checkpoints/step_NNNNNN/`` holds ``policy/`` (a loadable policy: LoRA adapters merged
in, gathered from the shards under FSDP2), ``adapter.pt`` (LoRA), ``sharded/`` (FSDP2: model and optimizer
shards), ``trainer_state.pt`` (the run's bookkeeping, tensors and plain data only) and ``config.yaml``. The
LoRA and FSDP2 specifics are the LoRA module's (:mod:`mssr.models.lora`) and the parallel strategy's
(:mod:`mssr.trainer.parallel`); this class only decides which to call.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from mssr.config import dump_yaml
from mssr.models.lora import adapter_state_dict, is_lora, load_adapter_state_dict, save_merged
from mssr.trainer import distributed as dist
from mssr.trainer.checkpoint import (
    UnsafeCheckpointError,
    latest_checkpoint,
    load_state,
    prepare_checkpoint,
    publish_checkpoint,
    save_state,
)
from mssr.trainer.rundir import CHECKPOINTS, CONFIG, POLICY, RunError, resume_config_diff, run_has_data


class Checkpointer:
    """Saves and loads the checkpoints of the run in ``run_dir`` (config ``cfg``) for a policy whose (wrapped)
    model is ``model``, trained by ``optimizer`` under the parallel ``strategy``."""

    def __init__(
        self, run_dir: Path, cfg: Any, strategy: Any, policy: Any, model: Any, optimizer: Any
    ) -> None:
        self.run_dir = run_dir
        self.root = run_dir / CHECKPOINTS
        self.cfg, self.strategy, self.policy, self.model, self.optimizer = (
            cfg,
            strategy,
            policy,
            model,
            optimizer,
        )

    def size_bytes(self, trainable: list[torch.nn.Parameter]) -> int:
        """About what one checkpoint takes on disk: the weights (export) and the optimizer's two moments."""
        n = sum(p.numel() * p.element_size() for p in self.model.parameters())
        t = sum(p.numel() * p.element_size() for p in trainable)
        return n + 2 * t + (16 << 20)

    def save(self, step: int, state: dict[str, Any]) -> Path | None:
        """Write step ``step``'s checkpoint with the trainer's ``state`` (its ``optimizer`` entry goes to the
        shards under FSDP2). Every rank takes part (sharded state and the full-weights export are collectives);
        rank 0 writes the rest and publishes the directory atomically. A failure raises :class:`RunError` on
        every rank, naming the file, the free space and the latest complete checkpoint."""
        dist.barrier()
        main = dist.is_main()
        tmp: Path | str | None = None
        if main:
            try:
                tmp = prepare_checkpoint(self.root, step)
            except OSError as exc:
                tmp = self._error(step, exc)
        tmp = dist.broadcast_object(tmp)
        if isinstance(tmp, str):  # every rank stops with rank 0's message
            raise RunError(tmp)
        if self.strategy.sharded:
            self.strategy.save_sharded(tmp / "sharded", self.model, self.optimizer)
            state = {k: v for k, v in state.items() if k != "optimizer"}  # in sharded/
        # the full weights of a sharded plain model, gathered on rank 0 (a collective); LoRA merges its adapters
        # once, in save_merged; otherwise the policy's own state dict
        export = (
            self.strategy.full_state_dict(self.model)
            if self.strategy.sharded and not is_lora(self.model)
            else None
        )
        path, error = None, None
        if main:
            writing = tmp / POLICY  # the file being written, for the error message
            try:
                if is_lora(self.model):
                    save_merged(self.policy, writing)
                    writing = tmp / "adapter.pt"
                    save_state(writing, adapter_state_dict(self.model))
                else:
                    self.policy.save(writing, state_dict=export)
                writing = tmp / "trainer_state.pt"
                save_state(writing, state)
                writing = tmp / CONFIG
                writing.write_text(dump_yaml(self.cfg), encoding="utf-8")
                writing = self.root / f"step_{step:06d}"
                path = publish_checkpoint(self.root, step, tmp, keep_last=self.cfg.checkpoint.keep_last)
            except (OSError, RuntimeError) as exc:  # a full disk: torch says "basic_ios::clear"
                shutil.rmtree(tmp, ignore_errors=True)
                error = self._error(step, exc, getattr(exc, "filename", None) or writing)
        error = dist.broadcast_object(error)
        if error:
            raise RunError(error)
        return path

    def _error(self, step: int, exc: BaseException, writing: Path | str | None = None) -> str:
        try:
            free = f"{shutil.disk_usage(self.root).free / 2**20:.0f} MB free"
        except OSError:
            free = "free space unknown"
        latest = latest_checkpoint(self.root)
        where = f" (writing {Path(writing).name})" if writing else ""
        return (
            f"could not write the checkpoint of step {step} to {self.root}{where} ({free}): "
            f"{getattr(exc, 'strerror', None) or exc}; the latest complete checkpoint is "
            f"{latest.name if latest else 'none'}"
        )

    def load(self, path: Path) -> dict[str, Any]:
        """Load the weights and the optimizer of checkpoint ``path`` into the model and optimizer; returns its
        trainer state (for the trainer's ``load_state_dict``)."""
        from mssr.models import load_policy

        st = load_state(path / "trainer_state.pt")
        if self.strategy.sharded:
            if not (path / "sharded").is_dir():
                raise RuntimeError(
                    f"{path} has no sharded/ state: it was not written under parallel.strategy=fsdp"
                )
            self.strategy.load_sharded(path / "sharded", self.model, self.optimizer)
            return st
        if is_lora(self.model):
            load_adapter_state_dict(self.model, load_state(path / "adapter.pt"))
        else:
            # from_pretrained applies the checkpoint-format key mapping (e.g. visual.* -> model.visual.*)
            saved = load_policy(path / POLICY, dtype=self.strategy.param_dtype).model
            self.model.load_state_dict(saved.state_dict())
            del saved
        self.optimizer.load_state_dict(st["optimizer"])
        return st

    def to_resume(self) -> Path | None:
        """The checkpoint ``checkpoint.resume`` names (auto/force: the latest of this run), or None. Refused with
        a :class:`RunError`: ``never`` into a directory that holds an earlier run, and (unless ``force``) a
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
        path = latest_checkpoint(self.root) if r in ("auto", "force") else Path(r)
        if path is None:
            return None
        if r != "force":
            diff = resume_config_diff(path / CONFIG, self.cfg)
            if diff:
                shown = "; ".join(diff[:6]) + (f"; and {len(diff) - 6} more" if len(diff) > 6 else "")
                raise RunError(
                    f"checkpoint {path} was written by a run with another config ({shown}): choose a new "
                    "output_dir, or continue it anyway with checkpoint.resume=force"
                )
        return path


__all__ = ["Checkpointer", "UnsafeCheckpointError"]

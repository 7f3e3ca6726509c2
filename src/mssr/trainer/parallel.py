"""How the policy is spread over the processes, and in which dtype it computes.

Two strategies share one interface (:class:`Replicated` and :class:`Sharded`), so the training loop never
branches on the strategy's name:

- ``ddp`` (:class:`Replicated`): every rank holds the whole model in ``param_dtype`` (float32 master weights);
  forward passes run under :func:`torch.autocast` in the compute dtype; gradients are summed over ranks with one
  all-reduce per optimizer mini-batch (:func:`mssr.trainer.distributed.all_reduce_grads`).
- ``fsdp`` (:class:`Sharded`): FSDP2 (``torch.distributed.fsdp.fully_shard``) on every vision block and decoder
  layer (the classes the model lists in ``_no_split_modules``), the vision merger and the root. Parameters,
  gradients and AdamW state are sharded in ``param_dtype``; ``MixedPrecisionPolicy(param_dtype=compute,
  reduce_dtype=float32)`` gathers layers in the compute dtype and reduce-scatters gradients in float32, summed
  (divide factor 1: the losses are normalised by global token counts). Optional CPU offload.

FSDP2 runs collectives inside every sharded module's forward and backward, so every rank must run the same
sequence of forwards. Two rules keep that true whatever the data: forward-only passes (rollout generation,
old/reference log-probs, validation) run inside :meth:`Sharded.gathered`, which all-gathers the whole model
once (in the compute dtype) and then runs with no collectives, so ranks may decode different numbers of
tokens; the training update runs exactly one forward and one backward per micro-batch, the same number on
every rank (a rank with fewer rows runs zero-weighted padding micro-batches, see
``RLTrainer.update_policy``).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mssr.trainer import distributed as dist

log = logging.getLogger("mssr.train")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Built-in presets measured faster in bfloat16 than float32 on a CPU with AMX (docs/training.md "Precision"):
# ``base`` fwd+bwd 1.6x, generation 1.5-2.1x; ``tiny`` and ``small`` are overhead-bound and slower in bf16.
# Without AMX (AVX2 / AVX-512 without bf16) a bf16 matmul runs 30-70x slower than fp32: never bf16 there.
CPU_BF16_PRESETS = frozenset({"base"})


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (Intel AMX-BF16), read from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return any(line.startswith("flags") and " amx_bf16" in line for line in f)
    except OSError:
        return False


def resolve_compute_dtype(
    name: str, device: torch.device, *, preset: str | None = None, fast_cpu_bf16: bool | None = None
) -> torch.dtype:
    """``model.dtype`` → the dtype forward passes run in. ``auto``: bfloat16 on a GPU that supports it; on a
    CPU bfloat16 only for a built-in preset measured faster in it (:data:`CPU_BF16_PRESETS`) and only where
    the CPU has AMX-BF16 (``fast_cpu_bf16``, default: :func:`cpu_has_fast_bf16`), else float32."""
    if name != "auto":
        return DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    fast = cpu_has_fast_bf16() if fast_cpu_bf16 is None else fast_cpu_bf16
    return torch.bfloat16 if preset in CPU_BF16_PRESETS and fast else torch.float32


def fsdp_units(model: nn.Module) -> list[nn.Module]:
    """The submodules sharded as one unit each: instances of the classes in the model's
    ``_no_split_modules`` (decoder layers, vision blocks) and the vision patch merger, innermost first."""
    names: set[str] = set()
    for m in model.modules():
        names.update(getattr(m, "_no_split_modules", None) or ())
    units = [m for m in model.modules() if type(m).__name__ in names]
    for name, m in model.named_modules():
        if name.endswith("visual.merger") or name.endswith("vision_tower.merger"):
            units.append(m)
    return units


class Replicated:
    """The whole model on every rank (``parallel.strategy=ddp``; also one process)."""

    name = "ddp"
    sharded = False

    def __init__(self, compute_dtype: torch.dtype, param_dtype: torch.dtype, device: torch.device) -> None:
        self.compute_dtype = compute_dtype
        self.param_dtype = param_dtype
        self.device = device

    # -- set-up
    def wrap(self, model: nn.Module, *, trainable: bool = True) -> nn.Module:
        return model

    # -- forward passes
    def autocast(self) -> contextlib.AbstractContextManager:
        """Forward passes in the compute dtype over ``param_dtype`` weights (no-op when they are equal)."""
        if self.compute_dtype == self.param_dtype:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.compute_dtype)

    @contextlib.contextmanager
    def gathered(self, *models: nn.Module | None) -> Iterator[None]:
        """Forward-only work (generation, scoring) in the compute dtype."""
        with self.autocast():
            yield

    # -- the update
    def reduce_grads(self, params: list[nn.Parameter]) -> None:
        dist.all_reduce_grads(params)

    def clip_grad_norm(self, params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)

    @property
    def lockstep_forwards(self) -> bool:
        """Whether every rank must run the same number of training forwards (collectives inside them)."""
        return False

    # -- checkpoints
    def full_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor] | None:
        """The complete state dict on rank 0 (None elsewhere); the model's own under ``ddp``."""
        return model.state_dict() if dist.is_main() else None

    def save_sharded(self, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Nothing: under ``ddp`` rank 0 saves the full model and optimizer state."""

    def load_sharded(self, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        raise NotImplementedError


class Sharded(Replicated):
    """FSDP2 over all ranks (``parallel.strategy=fsdp``)."""

    name = "fsdp"
    sharded = True

    def __init__(
        self,
        compute_dtype: torch.dtype,
        param_dtype: torch.dtype,
        device: torch.device,
        *,
        reshard_after_forward: bool = True,
        cpu_offload: bool = False,
    ) -> None:
        super().__init__(compute_dtype, param_dtype, device)
        self.reshard_after_forward = reshard_after_forward
        self.cpu_offload = cpu_offload

    def wrap(self, model: nn.Module, *, trainable: bool = True) -> nn.Module:
        from torch.distributed.fsdp import (
            CPUOffloadPolicy,
            FSDPModule,
            MixedPrecisionPolicy,
            OffloadPolicy,
            fully_shard,
        )

        mp = MixedPrecisionPolicy(
            param_dtype=self.compute_dtype if self.compute_dtype != self.param_dtype else None,
            reduce_dtype=torch.float32,
        )
        kw: dict[str, Any] = dict(
            mp_policy=mp,
            reshard_after_forward=self.reshard_after_forward,
            offload_policy=CPUOffloadPolicy() if self.cpu_offload else OffloadPolicy(),
        )
        # FSDP2 warns that the root returns a view (the logits slice HF returns); the trainer never modifies
        # the logits in place, so its pre-backward hook is not at risk
        warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")
        for unit in fsdp_units(model):
            fully_shard(unit, **kw)
        fully_shard(model, **kw)
        for m in model.modules():
            if isinstance(m, FSDPModule):
                m.set_gradient_divide_factor(1.0)  # sum over ranks: losses use global normalisers
                m.set_force_sum_reduction_for_comms(True)  # plain SUM (gloo has no PREMUL_SUM)
        return model

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()  # the mixed-precision policy casts the gathered weights

    @contextlib.contextmanager
    def gathered(self, *models: nn.Module | None) -> Iterator[None]:
        """All-gather the whole of each model (compute dtype) for forward-only work, so no collective runs
        inside the forwards and ranks may generate different numbers of tokens; reshard afterwards."""
        from torch.distributed.fsdp import FSDPModule

        units = [
            m for model in models if model is not None for m in model.modules() if isinstance(m, FSDPModule)
        ]
        for m in units:
            m.unshard()
            m.set_reshard_after_forward(False, recurse=False)
        try:
            yield
        finally:
            for m in units:
                m.reshard()
            for model in models:
                if isinstance(model, FSDPModule):
                    model.set_reshard_after_forward(self.reshard_after_forward)
                    model.set_reshard_after_forward(False, recurse=False)  # the root keeps its weights

    def reduce_grads(self, params: list[nn.Parameter]) -> None:
        """Nothing: FSDP2 reduce-scatters in backward."""

    def clip_grad_norm(self, params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
        gn = torch.nn.utils.clip_grad_norm_(params, max_norm)
        return gn.full_tensor() if hasattr(gn, "full_tensor") else gn

    @property
    def lockstep_forwards(self) -> bool:
        return True

    def full_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor] | None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not dist.is_main():
            return None
        # a tied weight (lm_head = embed_tokens) comes back under both names; keep the first, as save_pretrained
        # of the unwrapped model does
        aliases = {n for n, _ in model.named_parameters(remove_duplicate=False)}
        aliases -= {n for n, _ in model.named_parameters()}
        return {k: v for k, v in sd.items() if k not in aliases}

    def save_sharded(self, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_sd, optim_sd = get_state_dict(model, optimizer)
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(path))

    def load_sharded(self, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        model_sd, optim_sd = get_state_dict(model, optimizer)
        state = {"model": model_sd, "optim": optim_sd}
        dcp.load(state, checkpoint_id=str(path))
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])


def build_strategy(cfg: Any, device: torch.device) -> Replicated:
    """The strategy a :class:`~mssr.trainer.config.TrainConfig` asks for, on this process group."""
    m, p = cfg.model, cfg.parallel
    preset = None if m.path else m.preset
    compute = resolve_compute_dtype(m.dtype, device, preset=preset)
    param = DTYPES[m.param_dtype]
    if param != torch.float32 and compute != param:
        raise ValueError(
            f"model.param_dtype={m.param_dtype} with compute dtype {compute}: low-precision parameters "
            "compute in their own dtype; set model.dtype to the same value (or param_dtype=float32)"
        )
    if compute == torch.float16:
        raise ValueError(
            "model.dtype=float16 needs loss scaling, which the trainer does not do; use bfloat16 "
            "(same speed on GPUs since Ampere, no overflow)"
        )
    if param != torch.float32 and cfg.optim.lr < 1e-4:
        log.warning(
            "model.param_dtype=%s at lr %.1e: AdamW updates much smaller than a weight's %s resolution round "
            "away (at lr 1e-6 about 2%% of a typical weight matrix changes per step). Keep param_dtype=float32 "
            "(master weights) unless you know the updates are large enough.",
            m.param_dtype,
            cfg.optim.lr,
            m.param_dtype,
        )
    if p.strategy == "fsdp" and dist.world_size() > 1:
        return Sharded(
            compute,
            param,
            device,
            reshard_after_forward=p.reshard_after_forward,
            cpu_offload=p.cpu_offload,
        )
    if p.strategy == "fsdp":
        log.info("parallel.strategy=fsdp with one process: nothing to shard, training unsharded")
    return Replicated(compute, param, device)

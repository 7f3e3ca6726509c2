"""LoRA adapters (peft) and a frozen vision tower for Qwen2-VL / Qwen2.5-VL policies.

:func:`apply_lora` wraps a policy model in a peft ``PeftModel`` whose forward is the wrapped model's
forward (no task type: arguments pass through unchanged), so the rollout engine and ``compute_logprobs``
run on it as on the plain model. The reference model is the same weights with the adapters switched off
(:func:`adapters_disabled`); :func:`merged_state_dict` / :func:`save_merged` export W + ΔW as a plain
checkpoint without touching the trained weights (no in-place merge, so resumes stay bitwise exact).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft.tuners.lora import LoraLayer
from torch import nn
from transformers import PreTrainedModel

from mssr.models.policy import Policy

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Where Qwen2-VL / Qwen2.5-VL keep the vision tower (its patch merger is `visual.merger`) across
# transformers versions: `model.model.visual` (>= 4.52) or `model.visual` (older).
_VISION_PATHS = ("model.visual", "visual")
_VISION_NAMES = ("visual", "vision_tower", "vision_model")
# What other families put between the vision tower and the language model (Qwen's merger sits inside
# `visual`): Gemma 3's projector, Idefics3 / SmolVLM's connector.
_PROJECTOR_PATHS = ("model.multi_modal_projector", "model.connector")


def is_lora(model: nn.Module) -> bool:
    """Whether `model` is a peft-wrapped model."""
    return isinstance(model, PeftModel)


def base_model(model: nn.Module) -> PreTrainedModel:
    """The underlying HF model (the model itself when not peft-wrapped; with LoRA layers injected if it is)."""
    return model.get_base_model() if isinstance(model, PeftModel) else model


def vision_tower(model: nn.Module) -> tuple[str, nn.Module] | None:
    """``(name, module)`` of the vision tower (patch merger included) inside :func:`base_model`, or None."""
    hf = base_model(model)
    for path in _VISION_PATHS:
        with contextlib.suppress(AttributeError):
            return path, hf.get_submodule(path)
    for name, module in hf.named_modules():  # other layouts: the shallowest module named like a ViT
        if name.rsplit(".", 1)[-1] in _VISION_NAMES:
            return name, module
    return None


def freeze_vision(model: nn.Module) -> int:
    """Set ``requires_grad=False`` on every parameter of the vision tower and its patch merger (on a plain
    HF model or a ``PeftModel``; adapters inside the tower are frozen too) — for Gemma 3 and Idefics3 also the
    projector / connector into the language model. Returns the number of frozen parameter elements (0 when
    the model has no vision tower)."""
    found = vision_tower(model)
    if found is None:
        return 0
    modules = [found[1]]
    hf = base_model(model)
    for path in _PROJECTOR_PATHS:
        with contextlib.suppress(AttributeError):
            modules.append(hf.get_submodule(path))
    n = 0
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(False)
            n += p.numel()
    return n


def lora_target_names(
    model: nn.Module, target_modules: Sequence[str] = DEFAULT_TARGET_MODULES, *, include_vision: bool = False
) -> list[str]:
    """Full names of the ``nn.Linear`` modules whose last name component is in `target_modules`, the
    vision tower's excluded unless `include_vision`."""
    hf = base_model(model)
    found = vision_tower(hf)
    skip = f"{found[0]}." if found is not None and not include_vision else None
    wanted = set(target_modules)
    return [
        name
        for name, module in hf.named_modules()
        if isinstance(module, nn.Linear)
        and name.rsplit(".", 1)[-1] in wanted
        and not (skip and name.startswith(skip))
    ]


def apply_lora(
    model: PreTrainedModel,
    *,
    rank: int,
    alpha: float,
    dropout: float = 0.0,
    target_modules: Sequence[str] = DEFAULT_TARGET_MODULES,
    include_vision: bool = False,
) -> PeftModel:
    """Wrap `model` with LoRA adapters (scale ``alpha / rank``) on the linear layers named `target_modules`
    (last name component), outside the vision tower unless `include_vision`.

    Injects the adapters into `model` in place. Afterwards only the adapter parameters are trainable;
    A is initialised from the global torch RNG (deterministic given the seed), B = 0, so the wrapped model
    computes exactly what `model` did.
    """
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    if isinstance(model, PeftModel):
        raise ValueError("model is already peft-wrapped")
    names = lora_target_names(model, target_modules, include_vision=include_vision)
    if not names:
        raise ValueError(f"no nn.Linear module matches target_modules={list(target_modules)}")
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=names, bias="none")
    with warnings.catch_warnings():  # peft 0.21 calls a transformers 5 deprecated name
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


@contextlib.contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[None]:
    """Inside, a ``PeftModel`` computes as its base model (peft's ``disable_adapter``); no-op otherwise."""
    if isinstance(model, PeftModel):
        with model.disable_adapter():
            yield
    else:
        yield


def _delta_weights(hf: nn.Module) -> dict[str, torch.Tensor]:
    """ΔW of every LoRA layer with an active adapter, keyed by the plain model's weight name."""
    deltas: dict[str, torch.Tensor] = {}
    for name, module in hf.named_modules():
        if not isinstance(module, LoraLayer) or module.merged or module.disable_adapters:
            continue
        for adapter in module.active_adapters:
            if getattr(module, "use_dora", {}).get(adapter, False):
                raise NotImplementedError("merged_state_dict does not support DoRA adapters")
            if adapter not in module.lora_A and adapter not in module.lora_embedding_A:
                continue
            key = f"{name}.weight"
            delta = module.get_delta_weight(adapter).detach().float()
            deltas[key] = deltas[key] + delta if key in deltas else delta
    return deltas


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The plain model's state dict with W + ΔW for every adapted layer, computed out of place.

    Keys are exactly those of the un-wrapped model (peft's ``base_layer`` / ``lora_*`` entries folded
    away); a non-peft model returns its own state dict. Entries of layers without adapters share storage
    with the model's parameters (detached): copy before modifying. Merged weights are summed in float32
    and cast to the weight's dtype. Tied weights (``lm_head`` / ``embed_tokens``) stay identical; an adapter on
    a tied weight raises ``ValueError`` (the plain model could not represent it).
    """
    hf = base_model(model)
    if not isinstance(model, PeftModel):
        return hf.state_dict()
    deltas = _delta_weights(hf)
    for group in _tied_groups(hf):
        if any(k in deltas for k in group):
            raise ValueError(f"LoRA adapts the tied weights {sorted(group)}: no plain-model equivalent")
    out: dict[str, torch.Tensor] = {}
    for key, value in hf.state_dict().items():
        parts = key.split(".")
        if any(p.startswith("lora_") for p in parts):
            continue
        plain = ".".join(p for p in parts if p != "base_layer")
        if plain in out:
            raise ValueError(f"two peft entries map to {plain!r}: unsupported peft configuration")
        if plain in deltas:
            value = (value.float() + deltas[plain].to(value.device)).to(value.dtype)
        out[plain] = value
    for key in out:
        if "modules_to_save" in key or "original_module" in key:
            raise NotImplementedError("merged_state_dict does not support peft modules_to_save")
    return out


def _tied_groups(hf: nn.Module) -> list[set[str]]:
    """Plain-model parameter names sharing one tensor (e.g. ``lm_head.weight`` and the input embedding)."""
    by_param: dict[int, set[str]] = {}
    for name, p in hf.named_parameters(remove_duplicate=False):
        if "lora_" in name:
            continue
        by_param.setdefault(id(p), set()).add(name.replace(".base_layer.", "."))
    return [names for names in by_param.values() if len(names) > 1]


def plain_model(model: nn.Module) -> PreTrainedModel:
    """A plain HF model (no peft layers) of the same class and config, holding :func:`merged_state_dict`.

    Built on the meta device and given the merged tensors (sharing storage with un-adapted weights of
    `model`, so no second full copy is made); non-persistent buffers are copied from `model`."""
    hf = base_model(model)
    merged = merged_state_dict(model)
    with torch.device("meta"):
        plain = type(hf)(hf.config)
    plain.load_state_dict(merged, strict=True, assign=True)
    source_buffers = {name.replace(".base_layer.", "."): b for name, b in hf.named_buffers()}
    for name, buf in list(plain.named_buffers()):
        if buf.is_meta:
            module_name, _, attr = name.rpartition(".")
            owner = plain.get_submodule(module_name) if module_name else plain
            owner._buffers[attr] = source_buffers[name].clone()
    if getattr(hf.config, "tie_word_embeddings", False) or getattr(
        getattr(hf.config, "text_config", None), "tie_word_embeddings", False
    ):
        plain.tie_weights()
    leftover = [n for n, t in [*plain.named_parameters(), *plain.named_buffers()] if t.is_meta]
    if leftover:
        raise RuntimeError(f"tensors left on the meta device: {leftover}")
    plain.generation_config = hf.generation_config
    plain.eval()
    return plain


def save_merged(policy: Policy, path: str | Path) -> Path:
    """Write `policy` with its adapters merged as a plain checkpoint that :func:`mssr.models.load_policy`
    loads (config, weights, processor, ``mssr_policy.json``). The policy's model is not modified."""
    info: dict[str, Any] = dict(policy.info)
    if isinstance(policy.model, PeftModel):
        cfg = policy.model.peft_config[policy.model.active_adapter]
        info["lora_merged"] = {"rank": int(cfg.r), "alpha": float(cfg.lora_alpha)}
    return Policy(model=plain_model(policy.model), processor=policy.processor, info=info).save(path)


def adapter_state_dict(model: PeftModel) -> dict[str, torch.Tensor]:
    """The adapter weights only (peft's ``get_peft_model_state_dict``), for trainer checkpoints."""
    return get_peft_model_state_dict(model)


def load_adapter_state_dict(model: PeftModel, state_dict: dict[str, torch.Tensor]) -> None:
    """Load :func:`adapter_state_dict` output into a model wrapped with the same LoRA config; every
    adapter weight must be present."""
    result = set_peft_model_state_dict(model, state_dict)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        raise KeyError(f"adapter state dict mismatch: missing {missing}, unexpected {result.unexpected_keys}")


def save_adapter(model: PeftModel, path: str | Path) -> Path:
    """peft ``save_pretrained`` of the adapter alone (``adapter_config.json`` + ``adapter_model.safetensors``)."""
    path = Path(path)
    model.save_pretrained(path)
    return path

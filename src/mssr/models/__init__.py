"""Policies: tiny presets built locally (Qwen2.5-VL; Qwen3-VL, Qwen3-VL MoE, Gemma 3 and Idefics3 in
:mod:`mssr.models.families`), and loading of real checkpoints (Qwen2-VL / Qwen2.5-VL / Qwen3-VL first-class,
other image-text-to-text families through the Auto classes).

Public API: :func:`build_tiny_policy`, :func:`load_policy`, :class:`Policy`, :data:`PRESETS`,
:func:`mssr.models.chat.build_prompt`; LoRA and a frozen vision tower in :mod:`mssr.models.lora`.
"""

from mssr.models.chat import DEFAULT_INSTRUCTION, build_messages, build_prompt
from mssr.models.lora import (
    adapter_state_dict,
    adapters_disabled,
    apply_lora,
    freeze_vision,
    is_lora,
    load_adapter_state_dict,
    merged_state_dict,
    save_adapter,
    save_merged,
)
from mssr.models.policy import Policy, build_tiny_policy, load_policy
from mssr.models.presets import PRESETS, TinyPreset

__all__ = [
    "DEFAULT_INSTRUCTION",
    "PRESETS",
    "Policy",
    "TinyPreset",
    "adapter_state_dict",
    "adapters_disabled",
    "apply_lora",
    "build_messages",
    "build_prompt",
    "build_tiny_policy",
    "freeze_vision",
    "is_lora",
    "load_adapter_state_dict",
    "load_policy",
    "merged_state_dict",
    "save_adapter",
    "save_merged",
]

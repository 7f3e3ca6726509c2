"""Real Qwen2.5-VL architectures as configs, and weightless ("meta") models to count their parameters.

:func:`shape_config` builds the ``Qwen2_5_VLConfig`` of Qwen2.5-VL-3B-Instruct or -7B-Instruct from the sizes
in the published ``config.json`` files, so the memory plan (:mod:`mssr.trainer.memory`) can size a paper run
without the checkpoint. :func:`resolve_config` picks the config a :class:`~mssr.trainer.config.ModelConfig`
means: a local model directory's ``config.json``, a known shape by name, or a built-in preset.
:func:`build_meta_model` instantiates a model on the ``meta`` device: real shapes, no storage, ~0.1 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PretrainedConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration


@dataclass(frozen=True)
class TextShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tie_word_embeddings: bool


# Qwen2.5-VL-{3B,7B}-Instruct config.json (the vision tower is the same in both; only its output size differs)
SHAPES: dict[str, TextShape] = {
    "Qwen/Qwen2.5-VL-3B-Instruct": TextShape(2048, 36, 16, 2, 11008, 151936, True),
    "Qwen/Qwen2.5-VL-7B-Instruct": TextShape(3584, 28, 28, 4, 18944, 152064, False),
}
VISION = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "in_channels": 3,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31],
    "hidden_act": "silu",
    "tokens_per_second": 2,
}
# Qwen2's special token ids (the same in every Qwen2.5-VL checkpoint)
TOKEN_IDS = {
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "image_token_id": 151655,
    "video_token_id": 151656,
}


def known_shape(name_or_path: str | Path | None) -> str | None:
    """The canonical name (``"Qwen/Qwen2.5-VL-7B-Instruct"``) when `name_or_path` is a known model's hub id
    or a path whose last component is its name (case-insensitive); else None."""
    if not name_or_path:
        return None
    last = str(name_or_path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    for name in SHAPES:
        if last == name.rsplit("/", 1)[-1].lower():
            return name
    return None


def shape_config(name: str) -> Qwen2_5_VLConfig:
    """The ``Qwen2_5_VLConfig`` of a known shape (any spelling :func:`known_shape` accepts)."""
    key = known_shape(name)
    if key is None:
        raise ValueError(f"unknown model shape {name!r}; known: {', '.join(SHAPES)}")
    t = SHAPES[key]
    text = {
        "vocab_size": t.vocab,
        "hidden_size": t.hidden,
        "intermediate_size": t.intermediate,
        "num_hidden_layers": t.layers,
        "num_attention_heads": t.heads,
        "num_key_value_heads": t.kv_heads,
        "hidden_act": "silu",
        "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        "bos_token_id": TOKEN_IDS["bos_token_id"],
        "eos_token_id": TOKEN_IDS["eos_token_id"],
        "tie_word_embeddings": t.tie_word_embeddings,
    }
    vision = {**VISION, "out_hidden_size": t.hidden}
    ids = {k: v for k, v in TOKEN_IDS.items() if k not in ("bos_token_id", "eos_token_id")}
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, tie_word_embeddings=t.tie_word_embeddings, **ids
    )


def preset_config(preset: str) -> PretrainedConfig:
    """The config of a built-in preset as :func:`mssr.models.build_tiny_policy` makes it (token ids are
    placeholders: they do not change any size)."""
    from mssr.models.presets import get_preset, make_config
    from mssr.models.tokenizer import SPECIAL_TOKENS

    p = get_preset(preset)
    tokens = SPECIAL_TOKENS
    if p.family != "qwen2_5_vl":
        from mssr.models.families import get_family

        tokens = get_family(p.family).special_tokens
    ids = {tok: p.vocab_size - 1 - i for i, tok in enumerate(tokens)}
    return make_config(p, token_ids=ids, vocab_size=p.vocab_size)


def resolve_config(path: str | None, preset: str = "tiny") -> tuple[str, PretrainedConfig]:
    """``(name, config)`` of the model a config's ``model.path`` / ``model.preset`` means: a local directory
    with ``config.json`` (read with AutoConfig), else a known shape by name, else (path None) the preset.
    Raises ValueError for anything else."""
    if path is None:
        return f"preset:{preset}", preset_config(preset)
    local = Path(path).expanduser()
    if (local / "config.json").is_file():
        from transformers import AutoConfig

        return str(path), AutoConfig.from_pretrained(local)
    key = known_shape(path)
    if key is not None:
        return key, shape_config(key)
    raise ValueError(f"model.path {path!r}: no config.json there and not a known shape ({', '.join(SHAPES)})")


def build_meta_model(config: PretrainedConfig) -> torch.nn.Module:
    """The model of `config` on the meta device: real parameter shapes, no storage."""
    with torch.device("meta"):
        if isinstance(config, Qwen2_5_VLConfig):
            return Qwen2_5_VLForConditionalGeneration(config)
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText.from_config(config)


__all__ = [
    "SHAPES",
    "build_meta_model",
    "known_shape",
    "preset_config",
    "resolve_config",
    "shape_config",
]

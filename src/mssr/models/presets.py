"""Tiny Qwen2.5-VL configurations: ``tiny`` (~1M parameters), ``small`` (~5M), ``base`` (~20M).

The architecture is the paper's family (Qwen2.5-VL: windowed-attention ViT with RMSNorm and SwiGLU, patch
merger, M-RoPE decoder), scaled down. Constraints (docs/platform.md "A tiny Qwen2-VL built locally"):
the text model's ``mrope_section`` sums to head_dim/2 and the vision merger's output size equals the text
hidden size. With patch 8 and merge 2 a 64×64 image gives (64/8)²/2² = 16 image tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from transformers import Qwen2_5_VLConfig


@dataclass(frozen=True)
class TinyPreset:
    """Sizes of one preset. ``text_*`` is the language model, ``vision_*`` the ViT."""

    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    text_intermediate: int
    vision_hidden: int
    vision_depth: int
    vision_heads: int
    vision_intermediate: int
    vocab_size: int = 1024
    patch_size: int = 8
    merge_size: int = 2
    tie_word_embeddings: bool = True
    family: str = "qwen2_5_vl"  # transformers model_type; other families: mssr.models.families

    @property
    def head_dim(self) -> int:
        return self.text_hidden // self.text_heads

    def text_sizes(self, vocab_size: int) -> dict[str, int]:
        """The language model's sizes under the key names every family's text config uses."""
        return {
            "vocab_size": vocab_size,
            "hidden_size": self.text_hidden,
            "intermediate_size": self.text_intermediate,
            "num_hidden_layers": self.text_layers,
            "num_attention_heads": self.text_heads,
            "num_key_value_heads": self.text_kv_heads,
        }

    def qwen_vision_sizes(self) -> dict[str, int]:
        """The vision tower's sizes under Qwen-VL's vision config key names (patches merged 2×2, 2 frames)."""
        return {
            "depth": self.vision_depth,
            "hidden_size": self.vision_hidden,
            "intermediate_size": self.vision_intermediate,
            "num_heads": self.vision_heads,
            "patch_size": self.patch_size,
            "spatial_merge_size": self.merge_size,
            "temporal_patch_size": 2,
        }

    def siglip_vision_sizes(self, image_size: int) -> dict[str, int]:
        """The vision tower's sizes under SigLIP's vision config key names (Gemma 3, Idefics3)."""
        return {
            "hidden_size": self.vision_hidden,
            "intermediate_size": self.vision_intermediate,
            "num_hidden_layers": self.vision_depth,
            "num_attention_heads": self.vision_heads,
            "image_size": image_size,
            "patch_size": self.patch_size,
        }

    def mrope_section(self) -> list[int]:
        """Split head_dim/2 rotary frequencies over (time, height, width) in Qwen's 2:3:3 ratio
        (Qwen2.5-VL-7B: head_dim 128 → [16, 24, 24])."""
        half = self.head_dim // 2
        t = half // 4
        h = (half - t) // 2
        return [t, h, half - t - h]


PRESETS: dict[str, TinyPreset] = {
    "tiny": TinyPreset(
        text_hidden=128,
        text_layers=4,
        text_heads=4,
        text_kv_heads=2,
        text_intermediate=352,
        vision_hidden=64,
        vision_depth=2,
        vision_heads=4,
        vision_intermediate=160,
    ),
    "small": TinyPreset(
        text_hidden=256,
        text_layers=6,
        text_heads=8,
        text_kv_heads=2,
        text_intermediate=576,
        vision_hidden=128,
        vision_depth=4,
        vision_heads=4,
        vision_intermediate=320,
    ),
    "base": TinyPreset(
        text_hidden=384,
        text_layers=8,
        text_heads=6,
        text_kv_heads=2,
        text_intermediate=1280,
        vision_hidden=256,
        vision_depth=6,
        vision_heads=8,
        vision_intermediate=640,
    ),
}
# The tiny size in other families (mssr.models.families): same widths, the family's own architecture.
for _family in ("qwen3_vl", "qwen3_vl_moe", "gemma3", "idefics3"):
    PRESETS[f"{_family}-tiny"] = replace(PRESETS["tiny"], family=_family)


def get_preset(name: str) -> TinyPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


def make_config(
    preset: TinyPreset, *, token_ids: dict[str, int], vocab_size: int, image_size: int = 64
) -> Qwen2_5_VLConfig:
    """A ``Qwen2_5_VLConfig`` for ``preset``. ``token_ids`` maps the Qwen special tokens to this tokenizer's ids.
    A preset of another family gets that family's config (:func:`mssr.models.families.make_family_config`)."""
    p = preset
    if p.family != "qwen2_5_vl":
        from mssr.models.families import make_family_config

        return make_family_config(
            p, p.family, token_ids=token_ids, vocab_size=vocab_size, image_size=image_size
        )
    if p.text_hidden % p.text_heads or p.head_dim % 4:
        raise ValueError(
            f"text_hidden={p.text_hidden} / heads={p.text_heads} must give a head_dim divisible by 4"
        )
    if p.vision_hidden % p.vision_heads:
        raise ValueError(f"vision_hidden={p.vision_hidden} not divisible by vision_heads={p.vision_heads}")
    vision = {
        **p.qwen_vision_sizes(),
        # Windows of 4×4 merged tokens, as in the real model (112 px / 14 px / 2); the last block is global.
        "window_size": 4 * p.patch_size * p.merge_size,
        "fullatt_block_indexes": [p.vision_depth - 1],
        "out_hidden_size": p.text_hidden,  # must equal the text hidden size
        "hidden_act": "silu",
    }
    text = {
        **p.text_sizes(vocab_size),
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": p.mrope_section(),
        },
        "bos_token_id": None,
        "eos_token_id": token_ids["<|im_end|>"],
        "pad_token_id": token_ids["<|endoftext|>"],
        "tie_word_embeddings": p.tie_word_embeddings,
    }
    from mssr.models.families import qwen_vl_config

    return qwen_vl_config(Qwen2_5_VLConfig, p, text, vision, token_ids)


def preset_dict(preset: TinyPreset) -> dict:
    d = asdict(preset)
    if d["family"] == "qwen2_5_vl":  # the Qwen2.5-VL presets' info stays as it was
        del d["family"]
    return d

"""Model families besides Qwen2.5-VL: what a tiny policy of each needs, built locally (no hub, no download).

A family is a ``model_type`` of transformers: its config class, model class, special tokens, chat template and
processor. :func:`mssr.models.build_tiny_policy` builds the Qwen2.5-VL presets itself (``tiny``, ``small``,
``base``) and every other preset (``qwen3_vl-tiny``, ``gemma3-tiny``, ``idefics3-tiny``) through
:func:`build_family_parts`. Sizes come from the preset (:class:`~mssr.models.presets.TinyPreset`): ``patch_size``
is the ViT patch and ``merge_size`` the family's token reduction (Qwen's 2×2 patch merger, Gemma 3's average
pooling, Idefics3's pixel shuffle), so a 64×64 image gives (64/8/2)² = 16 image tokens in every family.

Tokenizers are the same locally trained byte-level BPE (:func:`mssr.models.tokenizer.build_tokenizer`) with the
family's special tokens at ids 0…; nothing in mssr hard-codes an id, real checkpoints put them elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ------------------------------------------------------------------------------------------ chat templates
# Qwen3-VL Instruct: Qwen2-VL's layout without the default system turn (the real template adds none).
QWEN3_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% if enable_thinking %}<think>\n{% endif %}{% endif %}"
)

# Gemma 3: a system turn is folded into the first user turn; the assistant is "model"; one <start_of_image>
# per image (the processor expands it to <start_of_image><image_soft_token>×N<end_of_image>).
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% set first_user_prefix = (messages[0]['content'] if messages[0]['content'] is string "
    "else messages[0]['content'][0]['text']) + '\n\n' %}"
    "{% set loop_messages = messages[1:] %}"
    "{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n{{ first_user_prefix if loop.first else '' }}"
    "{% if message['content'] is string %}{{ message['content'] | trim }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<start_of_image>{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

# Idefics3 / SmolVLM: "User:<image>question<end_of_utterance>\nAssistant:" (HuggingFaceM4's template).
IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}: {{ message['content'] }}"
    "{% else %}{% if message['content'][0]['type'] == 'image' %}:{% else %}: {% endif %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'text' %}{{ item['text'] }}{% elif item['type'] == 'image' %}<image>{% endif %}"
    "{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)

_QWEN_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
_IDEFICS3_GRID_TOKENS = tuple(f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6))


@dataclass(frozen=True)
class Family:
    """What mssr needs to know about one model family to build a tiny policy of it.

    Attributes:
        model_type: transformers' ``config.model_type``.
        special_tokens: the tokenizer's special tokens, ids 0… in this order.
        eos_token, pad_token, bos_token: the tokenizer's named tokens (eos = end of an assistant turn).
        extra_special_tokens: named tokens the family processor reads as tokenizer attributes.
        chat_template: renders :func:`mssr.models.chat.build_messages` output.
        vision_tokens: tokens only the processor may place (never sampled; docs/platform.md pitfall 2).
        stop_tokens: tokens generation stops at (the generation config's eos list).
    """

    model_type: str
    special_tokens: tuple[str, ...]
    eos_token: str
    pad_token: str
    chat_template: str
    vision_tokens: tuple[str, ...]
    stop_tokens: tuple[str, ...]
    bos_token: str | None = None
    extra_special_tokens: dict[str, str] = field(default_factory=dict)

    def tokenizer_kwargs(self) -> dict[str, Any]:
        """Keywords of :func:`mssr.models.tokenizer.build_tokenizer` for this family."""
        return {
            "special_tokens": self.special_tokens,
            "eos_token": self.eos_token,
            "pad_token": self.pad_token,
            "bos_token": self.bos_token,
            "chat_template": self.chat_template,
            "extra_special_tokens": dict(self.extra_special_tokens) or None,
        }


_QWEN3_VL = Family(
    model_type="qwen3_vl",
    special_tokens=_QWEN_TOKENS,
    eos_token="<|im_end|>",
    pad_token="<|endoftext|>",
    chat_template=QWEN3_VL_CHAT_TEMPLATE,
    vision_tokens=("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"),
    stop_tokens=("<|im_end|>", "<|endoftext|>"),
)

FAMILIES: dict[str, Family] = {
    "qwen3_vl": _QWEN3_VL,
    # Qwen3-VL-30B-A3B's architecture: every decoder MLP a sparse mixture of experts (here 4 experts, top 2)
    "qwen3_vl_moe": Family(**{**_QWEN3_VL.__dict__, "model_type": "qwen3_vl_moe"}),
    "gemma3": Family(
        model_type="gemma3",
        special_tokens=(
            "<pad>",
            "<eos>",
            "<bos>",
            "<start_of_turn>",
            "<end_of_turn>",
            "<start_of_image>",
            "<end_of_image>",
            "<image_soft_token>",
        ),
        eos_token="<end_of_turn>",
        pad_token="<pad>",
        bos_token="<bos>",
        extra_special_tokens={
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "image_token": "<image_soft_token>",
        },
        chat_template=GEMMA3_CHAT_TEMPLATE,
        vision_tokens=("<start_of_image>", "<end_of_image>", "<image_soft_token>"),
        stop_tokens=("<end_of_turn>", "<eos>"),
    ),
    "idefics3": Family(
        model_type="idefics3",
        special_tokens=(
            "<|endoftext|>",
            "<|im_start|>",
            "<end_of_utterance>",
            "<fake_token_around_image>",
            "<image>",
            "<global-img>",
            *_IDEFICS3_GRID_TOKENS,
        ),
        eos_token="<end_of_utterance>",
        pad_token="<|endoftext|>",
        chat_template=IDEFICS3_CHAT_TEMPLATE,
        vision_tokens=("<fake_token_around_image>", "<image>", "<global-img>", *_IDEFICS3_GRID_TOKENS),
        stop_tokens=("<end_of_utterance>", "<|endoftext|>"),
    ),
}


def get_family(model_type: str) -> Family:
    try:
        return FAMILIES[model_type]
    except KeyError:
        raise ValueError(f"no tiny family {model_type!r}; known: {', '.join(FAMILIES)}") from None


def _ids(tokenizer: Any, tokens: tuple[str, ...]) -> dict[str, int]:
    return {t: int(tokenizer.convert_tokens_to_ids(t)) for t in tokens}


def qwen_vl_config(config_class: type, p: Any, text: dict, vision: dict, token_ids: dict[str, int]) -> Any:
    """A Qwen-VL family config (``Qwen2_5_VLConfig``, ``Qwen3VLConfig``, …) from its text and vision parts and the
    ids of its image, video and vision-span tokens."""
    return config_class(
        text_config=text,
        vision_config=vision,
        image_token_id=token_ids["<|image_pad|>"],
        video_token_id=token_ids["<|video_pad|>"],
        vision_start_token_id=token_ids["<|vision_start|>"],
        vision_end_token_id=token_ids["<|vision_end|>"],
        tie_word_embeddings=p.tie_word_embeddings,
    )


def make_family_config(
    preset: Any, family: str, *, token_ids: dict[str, int], vocab_size: int, image_size: int = 64
) -> Any:
    """The transformers config of a tiny `preset` (:class:`~mssr.models.presets.TinyPreset`) of `family`;
    ``token_ids`` maps the family's special tokens to this tokenizer's ids."""
    p = preset
    if p.text_hidden % p.text_heads or p.vision_hidden % p.vision_heads:
        raise ValueError("hidden sizes must be divisible by the head counts")
    head_dim = p.text_hidden // p.text_heads
    f = get_family(family)
    eos = [token_ids[t] for t in f.stop_tokens]
    if family in ("qwen3_vl", "qwen3_vl_moe"):
        from transformers import Qwen3VLConfig, Qwen3VLMoeConfig

        half = head_dim // 2
        t = half * 3 // 8  # Qwen3-VL: [24, 20, 20] of 64, interleaved over the frequencies
        h = (half - t) // 2
        text = {
            **p.text_sizes(vocab_size),
            "head_dim": head_dim,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [t, h, half - t - h],
                "mrope_interleaved": True,
            },
            "bos_token_id": None,
            "eos_token_id": token_ids["<|im_end|>"],
            "pad_token_id": token_ids["<|endoftext|>"],
            "tie_word_embeddings": p.tie_word_embeddings,
        }
        grid = 8  # learned position embeddings of an 8×8 patch grid, interpolated for other sizes
        vision = {
            **p.qwen_vision_sizes(),
            "out_hidden_size": p.text_hidden,
            "num_position_embeddings": grid * grid,
            "deepstack_visual_indexes": [0],  # one deepstack feature, added after the first decoder layer
        }
        config_class = Qwen3VLConfig
        if family == "qwen3_vl_moe":
            config_class = Qwen3VLMoeConfig
            text.update(
                num_experts=4,
                num_experts_per_tok=2,
                moe_intermediate_size=p.text_intermediate // 2,
                decoder_sparse_step=1,
            )
        return qwen_vl_config(config_class, p, text, vision, token_ids)
    if family == "gemma3":
        from transformers import Gemma3Config

        patches = image_size // p.patch_size
        layers = ["sliding_attention"] * (p.text_layers - 1) + ["full_attention"]
        text = {
            **p.text_sizes(vocab_size),
            "head_dim": head_dim,
            "query_pre_attn_scalar": head_dim,
            "max_position_embeddings": 4096,
            # a window shorter than a built-in prompt (~95 tokens), so the local layers really slide
            "sliding_window": 64,
            "layer_types": layers,
            "pad_token_id": token_ids["<pad>"],
            "eos_token_id": eos,
            "bos_token_id": token_ids["<bos>"],
            "tie_word_embeddings": True,
        }
        vision = {
            **p.siglip_vision_sizes(image_size),
            "vision_use_head": False,
        }
        return Gemma3Config(
            text_config=text,
            vision_config=vision,
            mm_tokens_per_image=(patches // p.merge_size) ** 2,
            boi_token_index=token_ids["<start_of_image>"],
            eoi_token_index=token_ids["<end_of_image>"],
            image_token_index=token_ids["<image_soft_token>"],
            tie_word_embeddings=True,
        )
    if family == "idefics3":
        from transformers import Idefics3Config

        text = {
            "model_type": "llama",
            **p.text_sizes(vocab_size),
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5,
            "pad_token_id": token_ids["<|endoftext|>"],
            "eos_token_id": eos,
            "bos_token_id": None,
            "tie_word_embeddings": p.tie_word_embeddings,
        }
        vision = p.siglip_vision_sizes(image_size)
        return Idefics3Config(
            text_config=text,
            vision_config=vision,
            scale_factor=p.merge_size,
            image_token_id=token_ids["<image>"],
            pad_token_id=token_ids["<|endoftext|>"],
            tie_word_embeddings=p.tie_word_embeddings,
        )
    raise ValueError(f"no tiny family {family!r}")


def model_class(family: str) -> type:
    from transformers import (
        Gemma3ForConditionalGeneration,
        Idefics3ForConditionalGeneration,
        Qwen3VLForConditionalGeneration,
        Qwen3VLMoeForConditionalGeneration,
    )

    return {
        "qwen3_vl": Qwen3VLForConditionalGeneration,
        "qwen3_vl_moe": Qwen3VLMoeForConditionalGeneration,
        "gemma3": Gemma3ForConditionalGeneration,
        "idefics3": Idefics3ForConditionalGeneration,
    }[family]


def build_processor(
    family: str, tokenizer: Any, preset: Any, *, min_pixels: int, max_pixels: int, image_size: int = 64
) -> Any:
    """The family's processor around `tokenizer` (PIL image processors: no torchvision needed).

    Qwen3-VL resizes into [min_pixels, max_pixels] like Qwen2.5-VL; Gemma 3 and Idefics3 resize every image to
    the ViT's square input (`image_size`; Idefics3 without image splitting), so the pixel range is unused."""
    p = preset
    tokens = (image_size // p.patch_size // p.merge_size) ** 2
    if family in ("qwen3_vl", "qwen3_vl_moe"):
        from mssr.models.processor import Qwen3VLImageOnlyProcessor, build_image_processor

        image_processor = build_image_processor(
            patch_size=p.patch_size, merge_size=p.merge_size, min_pixels=min_pixels, max_pixels=max_pixels
        )
        return Qwen3VLImageOnlyProcessor(
            image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template
        )
    if family == "gemma3":
        from transformers import Gemma3Processor
        from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

        image_processor = Gemma3ImageProcessorPil(size={"height": image_size, "width": image_size})
        return Gemma3Processor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            chat_template=tokenizer.chat_template,
            image_seq_length=tokens,
        )
    if family == "idefics3":
        from transformers import Idefics3Processor
        from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

        image_processor = Idefics3ImageProcessorPil(
            do_image_splitting=False,
            size={"longest_edge": image_size},
            max_image_size={"longest_edge": image_size},
        )
        return Idefics3Processor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            chat_template=tokenizer.chat_template,
            image_seq_len=tokens,
        )
    raise ValueError(f"no tiny family {family!r}")


def stop_token_ids(family: str, tokenizer: Any) -> tuple[list[int], int]:
    """``(eos ids, pad id)`` of a tiny policy's generation config."""
    f = get_family(family)
    return list(_ids(tokenizer, f.stop_tokens).values()), int(tokenizer.convert_tokens_to_ids(f.pad_token))


__all__ = [
    "FAMILIES",
    "Family",
    "build_processor",
    "get_family",
    "make_family_config",
    "model_class",
    "stop_token_ids",
]

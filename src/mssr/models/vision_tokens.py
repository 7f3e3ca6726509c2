"""The vision special tokens a policy must never sample (docs/platform.md pitfall 2): a sampled
``<|image_pad|>`` breaks the next teacher-forced forward. The rollout engines suppress them; the policy lists
them. Lives with the models (both the rollout layer and :class:`mssr.models.Policy` read it)."""

from __future__ import annotations

from typing import Any

from torch import nn

# Special tokens that may only appear where the processor puts them (Qwen2-VL / Qwen2.5-VL vocabularies).
_VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
# Other families' vision tokens (Gemma 3, Idefics3 / SmolVLM), suppressed when the tokenizer has them as
# added (special) tokens — a plain BPE piece spelled the same is left alone.
_OTHER_VISION_TOKENS = (
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    *(f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)),
)


def default_suppress_token_ids(model: nn.Module, processor: Any) -> tuple[int, ...]:
    """Vision special tokens a policy must never sample (docs/platform.md pitfall 2), from config and tokenizer."""
    tokenizer = getattr(processor, "tokenizer", processor)
    config = getattr(model, "config", None)
    ids: set[int] = set()
    attrs = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    attrs += ("boi_token_index", "eoi_token_index", "image_token_index")  # Gemma 3
    for attr in attrs:
        value = getattr(config, attr, None)
        if isinstance(value, int) and value >= 0:
            ids.add(value)
    unk = getattr(tokenizer, "unk_token_id", None)
    vocab = tokenizer.get_vocab()
    for token in _VISION_TOKENS:
        if token in vocab and vocab[token] != unk:
            ids.add(int(vocab[token]))
    added = tokenizer.get_added_vocab() if hasattr(tokenizer, "get_added_vocab") else {}
    for token in _OTHER_VISION_TOKENS:
        if token in added and added[token] != unk:
            ids.add(int(added[token]))
    return tuple(sorted(ids))

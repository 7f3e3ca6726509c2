"""Build a tiny policy locally (Qwen2.5-VL presets, or another family's: :mod:`mssr.models.families`), or load a
checkpoint (Qwen2-VL, Qwen2.5-VL, Qwen3-VL first-class; Gemma 3, Idefics3 and other image-text-to-text models
through the Auto classes), through one path."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    AutoProcessor,
    GenerationConfig,
    PreTrainedModel,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLForConditionalGeneration,
    Qwen3VLForConditionalGeneration,
    Qwen3VLMoeForConditionalGeneration,
)

from mssr.models.presets import get_preset, make_config, preset_dict
from mssr.models.processor import (
    PROCESSOR_CLASSES,
    Qwen2_5_VLImageOnlyProcessor,
    build_image_processor,
    set_pixel_range,
)
from mssr.models.tokenizer import (
    IMAGE_PAD,
    SPECIAL_TOKENS,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
    build_tokenizer,
)

MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    "qwen2_vl": Qwen2VLForConditionalGeneration,
    "qwen2_5_vl": Qwen2_5_VLForConditionalGeneration,
    "qwen3_vl": Qwen3VLForConditionalGeneration,
    "qwen3_vl_moe": Qwen3VLMoeForConditionalGeneration,
}
POLICY_INFO_FILE = "mssr_policy.json"


@dataclass
class Policy:
    """A vision-language policy: the model and the processor that turns (images, prompt text) into its inputs.

    ``processor.tokenizer`` and ``processor.image_processor`` are the family's; ``processor.apply_chat_template``
    renders prompts (see :func:`mssr.models.chat.build_prompt`). ``info`` holds how the policy was built
    (preset, image size, seed) when mssr built it.
    """

    model: PreTrainedModel
    processor: Any
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def num_parameters(self) -> int:
        """Distinct trainable parameters (tied embeddings counted once)."""
        return sum(p.numel() for p in {id(p): p for p in self.model.parameters()}.values())

    def special_token_ids(self) -> dict[str, int]:
        """Ids of the family's special tokens in this policy's tokenizer (they differ between tiny and real):
        the Qwen ones, or those of a family in :data:`mssr.models.families.FAMILIES`."""
        from mssr.models.families import FAMILIES

        family = FAMILIES.get(str(getattr(self.model.config, "model_type", "")))
        tokens = family.special_tokens if family is not None else SPECIAL_TOKENS
        return {t: self.tokenizer.convert_tokens_to_ids(t) for t in tokens}

    def vision_token_ids(self) -> list[int]:
        """Token ids a sampled response must never contain (docs/platform.md pitfall 2): the Qwen vision
        tokens, or for another family what the rollout engine suppresses by default."""
        vocab = self.tokenizer.get_vocab()
        qwen = (VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD)
        if all(t in vocab for t in qwen):
            return [self.tokenizer.convert_tokens_to_ids(t) for t in qwen]
        from mssr.models.vision_tokens import default_suppress_token_ids

        return list(default_suppress_token_ids(self.model, self.processor))

    def save(self, path: str | Path, *, state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """``save_pretrained`` of model and processor, plus ``mssr_policy.json`` with :attr:`info`.
        ``state_dict`` replaces the model's own weights (e.g. gathered from FSDP shards)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path, state_dict=state_dict)
        self.processor.save_pretrained(path)
        (path / POLICY_INFO_FILE).write_text(
            json.dumps(self.info, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        return path


def default_tokenizer_corpus() -> list[str]:
    """The built-in task's corpus (questions, worked solutions, choices) when the data package provides it."""
    try:
        from mssr.data.builtin import corpus_texts
    except ImportError:
        return []
    return list(corpus_texts())


def build_tiny_policy(
    preset: str = "tiny",
    *,
    tokenizer_corpus: Iterable[str] | None = None,
    image_size: int = 64,
    seed: int = 0,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    vocab_size: int | None = None,
) -> Policy:
    """A randomly initialised Qwen2.5-VL policy of a preset size (``tiny`` ~1M, ``small`` ~5M, ``base`` ~20M),
    or of another family's preset (``qwen3_vl-tiny``, ``gemma3-tiny``, ``idefics3-tiny``).

    The tokenizer is a byte-level BPE trained on ``tokenizer_corpus`` (default: the built-in task's corpus,
    :func:`mssr.data.builtin.corpus_texts`) plus a fixed base corpus. Images are resized to a pixel count in
    [min_pixels, max_pixels] (default: both ``image_size``²), so a square ``image_size`` image gives
    (image_size/16)² image tokens. Same arguments → same weights and tokenizer.
    """
    p = get_preset(preset)
    factor = p.patch_size * p.merge_size
    if image_size % factor:
        raise ValueError(f"image_size={image_size} must be a multiple of patch*merge={factor}")
    corpus = list(tokenizer_corpus) if tokenizer_corpus is not None else default_tokenizer_corpus()
    if p.family != "qwen2_5_vl":
        return _build_family_policy(
            preset,
            corpus,
            image_size=image_size,
            seed=seed,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            vocab_size=vocab_size,
        )
    tokenizer = build_tokenizer(corpus, vocab_size=vocab_size or p.vocab_size)
    image_processor = build_image_processor(
        patch_size=p.patch_size,
        merge_size=p.merge_size,
        min_pixels=min_pixels if min_pixels is not None else image_size * image_size,
        max_pixels=max_pixels if max_pixels is not None else image_size * image_size,
    )
    processor = Qwen2_5_VLImageOnlyProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = make_config(p, token_ids=ids, vocab_size=len(tokenizer))
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        model = Qwen2_5_VLForConditionalGeneration(config)
    model.eval()
    model.generation_config = _generation_config(ids)
    info = {
        "preset": preset,
        "preset_sizes": preset_dict(p),
        "image_size": image_size,
        "seed": seed,
        "vocab_size": len(tokenizer),
    }
    return Policy(model=model, processor=processor, info=info)


def _build_family_policy(
    preset: str,
    corpus: list[str],
    *,
    image_size: int,
    seed: int,
    min_pixels: int | None,
    max_pixels: int | None,
    vocab_size: int | None,
) -> Policy:
    """:func:`build_tiny_policy` for a preset of another family (:mod:`mssr.models.families`)."""
    from mssr.models import families

    p = get_preset(preset)
    fam = families.get_family(p.family)
    tokenizer = build_tokenizer(corpus, vocab_size=vocab_size or p.vocab_size, **fam.tokenizer_kwargs())
    processor = families.build_processor(
        p.family,
        tokenizer,
        p,
        min_pixels=min_pixels if min_pixels is not None else image_size * image_size,
        max_pixels=max_pixels if max_pixels is not None else image_size * image_size,
        image_size=image_size,
    )
    ids = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in fam.special_tokens}
    config = make_config(p, token_ids=ids, vocab_size=len(tokenizer), image_size=image_size)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        model = families.model_class(p.family)(config)
    model.eval()
    eos, pad = families.stop_token_ids(p.family, tokenizer)
    model.generation_config = _generation_config({}, eos=eos, pad=pad)
    info = {
        "preset": preset,
        "family": p.family,
        "preset_sizes": preset_dict(p),
        "image_size": image_size,
        "seed": seed,
        "vocab_size": len(tokenizer),
    }
    return Policy(model=model, processor=processor, info=info)


def _generation_config(
    ids: dict[str, int], *, eos: list[int] | None = None, pad: int | None = None
) -> GenerationConfig:
    """Stop at ``<|im_end|>`` (or ``<|endoftext|>``; another family: `eos`); sample from the unmodified
    distribution by default (docs/platform.md pitfall 1: an implicit top_k=50 otherwise)."""
    return GenerationConfig(
        eos_token_id=eos if eos is not None else [ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=pad if pad is not None else ids["<|endoftext|>"],
        bos_token_id=None,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
    )


def load_policy(
    path_or_hub_id: str | Path,
    *,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    attn_implementation: str | None = "sdpa",
) -> Policy:
    """Load a policy saved by :meth:`Policy.save`, or any Qwen2-VL / Qwen2.5-VL checkpoint (directory or
    hub id; honours ``HF_HUB_OFFLINE``). ``dtype=None`` keeps the checkpoint's dtype. ``min_pixels`` /
    ``max_pixels`` override the image processor's resize range (EasyR1's knobs).

    The model class comes from ``config.model_type``; Qwen families (Qwen2-VL, Qwen2.5-VL, Qwen3-VL and its
    MoE) get the image-only processor (no torchvision needed). Other image-text-to-text models (Gemma 3,
    Idefics3 / SmolVLM tested) load through the Auto classes.
    """
    src = str(path_or_hub_id)
    local = Path(src)
    if local.exists() and not (local / "config.json").is_file():
        raise FileNotFoundError(f"{local} has no config.json: not a saved policy or checkpoint directory")
    config = AutoConfig.from_pretrained(src)
    model_type = getattr(config, "model_type", None)
    kwargs: dict[str, Any] = {"dtype": dtype if dtype is not None else "auto"}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model_cls = MODEL_CLASSES.get(model_type, AutoModelForImageTextToText)
    model = model_cls.from_pretrained(src, **kwargs)
    if model_type in PROCESSOR_CLASSES:
        processor = PROCESSOR_CLASSES[model_type].from_pretrained(src)
        if processor.chat_template is None:  # older checkpoints keep it in tokenizer_config.json only
            processor.chat_template = getattr(processor.tokenizer, "chat_template", None)
    else:
        processor = AutoProcessor.from_pretrained(src)
    if min_pixels is not None or max_pixels is not None:
        set_pixel_range(processor.image_processor, min_pixels=min_pixels, max_pixels=max_pixels)
    if device is not None:
        model.to(device)
    model.eval()
    info: dict[str, Any] = {"source": src, "model_type": model_type}
    if local.is_dir() and (local / POLICY_INFO_FILE).is_file():
        info.update(json.loads((local / POLICY_INFO_FILE).read_text(encoding="utf-8")))
    return Policy(model=model, processor=processor, info=info)

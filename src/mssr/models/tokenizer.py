"""A small byte-level BPE tokenizer in the Qwen2 style, trained locally.

Real Qwen2-VL / Qwen2.5-VL checkpoints ship a 151k-token byte-level BPE. A tiny policy cannot afford that
embedding table, so :func:`build_tokenizer` trains a BPE of a few hundred to a few thousand tokens on the
task corpus with the same machinery (``tokenizers`` BPE, a Qwen2-like split regex, byte-level alphabet),
and the same special tokens, so the family's processor and chat template work unchanged.

Design choices (see docs/models.md):
- Byte-level alphabet: every string is encodable; decode(encode(s)) == s for any NFC-normalised text.
- Words are merged up to whole tokens when frequent (" red", " circles"), so answers are not spelled letter by
  letter (which was seen to break under RL, docs/platform.md "Making a tiny model learn in minutes").
- Numbers are split into runs of at most three digits *without* a leading space (the space is its own token),
  so the same id stands for "17" in the reasoning and in ``\\boxed{17}``. Every integer 0..``number_range``
  is put in the training corpus, so each is one token.
- ``<think>`` and ``</think>`` are added (non-special) tokens: atomic in encoding, kept when decoding.
- Training is deterministic: same corpus and vocabulary size give the same tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

# The special tokens of the Qwen2-VL family, in the order their ids are assigned (ids 0..6 here; the real
# checkpoints put them at 151643..151656, which is why nothing in mssr hard-codes an id).
ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"
SPECIAL_TOKENS: tuple[str, ...] = (
    ENDOFTEXT,
    IM_START,
    IM_END,
    VISION_START,
    VISION_END,
    IMAGE_PAD,
    VIDEO_PAD,
)
THINK_TOKENS: tuple[str, ...] = ("<think>", "</think>")

# Qwen2's split regex, except that digits group in runs of up to three (Qwen2: one digit per token) and a
# letter run takes at most a space in front (Qwen2: any one non-letter), so "{purple}" and "<think>purple"
# hold the same "purple" token.
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)| ?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# The Qwen2-VL chat template's behaviour (system turn by default, ``<|vision_start|><|image_pad|><|vision_end|>``
# per image, ``<|im_start|>assistant\n`` as generation prompt), written for mssr.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _base_corpus(number_range: int) -> list[str]:
    """Text every mssr tokenizer is trained on, whatever the task corpus: the chat scaffolding, the reference
    instruction (docs/method.md "Reward and prompt"), the answer format, numbers and the ASCII letters."""
    from mssr.models.chat import DEFAULT_INSTRUCTION, DEFAULT_SYSTEM_PROMPT

    numbers = " ".join(str(i) for i in range(number_range + 1))
    letters = " ".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + " " + " ".join("abcdefghijklmnopqrstuvwxyz")
    scaffold = [
        DEFAULT_SYSTEM_PROMPT,
        DEFAULT_INSTRUCTION,
        "<think> </think> \\boxed{} The answer is",
        "(A) (B) (C) (D) (E) A. B. C. D. E. A B C D E",
    ]
    # Repeated so that these strings win merges against a large task corpus.
    return scaffold * 20 + [numbers] * 4 + [letters] * 2


def build_tokenizer(
    corpus: Iterable[str] | None = None,
    *,
    vocab_size: int = 1024,
    number_range: int = 200,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
    **wrap_kwargs: Any,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``corpus`` (plus the base corpus) and wrap it as a transformers tokenizer.

    ``vocab_size`` counts the learned tokens and the special ones; it must leave room for the 256-byte
    alphabet and the special tokens. The returned tokenizer has the Qwen2-VL chat template, ``<|endoftext|>``
    as pad token and ``<|im_end|>`` as eos (what generation stops at), like the Instruct checkpoints.

    Other families (:mod:`mssr.models.families`) pass their own ``special_tokens`` (ids 0.. in that order) and
    :func:`wrap_tokenizer` keywords (eos, pad, bos, chat template, named special tokens).
    """
    min_size = 256 + len(special_tokens) + 1
    if vocab_size < min_size:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: the byte alphabet and special tokens need {min_size}"
        )
    texts: list[str] = _base_corpus(number_range)
    if corpus is not None:
        texts.extend(str(t) for t in corpus)

    backend = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(THINK_TOKENS),
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    backend.add_tokens([AddedToken(t, normalized=False, special=False) for t in THINK_TOKENS])
    return wrap_tokenizer(backend, special_tokens=special_tokens, **wrap_kwargs)


def wrap_tokenizer(
    backend: Tokenizer,
    *,
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
    eos_token: str = IM_END,
    pad_token: str = ENDOFTEXT,
    bos_token: str | None = None,
    chat_template: str = CHAT_TEMPLATE,
    extra_special_tokens: dict[str, str] | None = None,
) -> PreTrainedTokenizerFast:
    """Wrap a ``tokenizers.Tokenizer`` carrying `special_tokens` (default: the Qwen ones) as a transformers
    tokenizer. ``extra_special_tokens`` names family tokens the processor reads as attributes (Gemma 3's
    ``boi_token``, ``image_token``, …)."""
    missing = [t for t in special_tokens if backend.token_to_id(t) is None]
    if missing:
        raise ValueError(f"tokenizer lacks the special tokens {missing}")
    named = {t for t in (eos_token, pad_token, bos_token) if t} | set((extra_special_tokens or {}).values())
    kwargs: dict[str, Any] = {}
    if extra_special_tokens:
        kwargs["extra_special_tokens"] = dict(extra_special_tokens)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=eos_token,
        pad_token=pad_token,
        unk_token=None,
        bos_token=bos_token,
        additional_special_tokens=[t for t in special_tokens if t not in named]
        if special_tokens is not SPECIAL_TOKENS
        else list(SPECIAL_TOKENS[1:]),
        model_max_length=32768,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        **kwargs,
    )
    tok.chat_template = chat_template
    return tok

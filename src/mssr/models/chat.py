"""Prompt formatting through the processor's chat template (docs/method.md "Reward and prompt")."""

from __future__ import annotations

from typing import Any

# docs/method.md, "Reward and prompt": the user turn is the question, then this instruction.
DEFAULT_INSTRUCTION = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
    "The reasoning process MUST BE enclosed within <think> </think> tags. "
    "The final answer MUST BE put in \\boxed{}."
)
# What the Qwen2-VL chat template inserts when the conversation has no system turn.
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


def build_messages(question: str, n_images: int, instruction: str | None = DEFAULT_INSTRUCTION) -> list[dict]:
    """One user turn: ``n_images`` image slots, then the question, then (if given) the instruction.

    Images come first, as in EasyR1's default when the question has no ``<image>`` placeholder. If the question
    carries ``<image>`` placeholders (the verl/EasyR1 convention), each one is replaced by an image slot at that
    position and their number must equal ``n_images``.
    """
    if n_images < 0:
        raise ValueError(f"n_images must be >= 0, got {n_images}")
    text = question if not instruction else f"{question} {instruction}"
    content: list[dict[str, Any]] = []
    if "<image>" in text:
        pieces = text.split("<image>")
        if len(pieces) - 1 != n_images:
            raise ValueError(
                f"question has {len(pieces) - 1} <image> placeholders but n_images={n_images}: {question!r}"
            )
        for i, piece in enumerate(pieces):
            if i > 0:
                content.append({"type": "image"})
            if piece:
                content.append({"type": "text", "text": piece})
    else:
        content.extend({"type": "image"} for _ in range(n_images))
        content.append({"type": "text", "text": text})
    return [{"role": "user", "content": content}]


def build_prompt(
    processor: Any,
    question: str,
    n_images: int,
    instruction: str | None = DEFAULT_INSTRUCTION,
    *,
    system_prompt: str | None = None,
) -> str:
    """The prompt text for one question, ending with the assistant generation prompt.

    Each image appears as ``<|vision_start|><|image_pad|><|vision_end|>``; the processor expands every
    ``<|image_pad|>`` to the image's token count when called with the images. ``instruction=None`` (or "")
    drops the instruction — it is ~40 tokens, which matters for a tiny model's prompt length. ``system_prompt``
    replaces the template's default system turn.
    """
    messages = build_messages(question, n_images, instruction)
    if system_prompt is not None:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

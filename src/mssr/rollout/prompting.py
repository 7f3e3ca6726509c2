"""Turn dataset records into :class:`PromptInput` s through the policy's chat template (shared by the trainer
and the evaluator, so training and evaluation see the same prompts)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from mssr.algos.keys import prompt_key
from mssr.models.chat import DEFAULT_INSTRUCTION, build_prompt
from mssr.rollout.batch import PromptInput


def resolve_instruction(instruction: str | None) -> str | None:
    """``"default"`` → docs/method.md's instruction; ``None``/``""`` → no instruction; anything else verbatim."""
    if instruction == "default":
        return DEFAULT_INSTRUCTION
    return instruction or None


def image_bytes(img: Any) -> bytes:
    """A canonical encoding of a PIL image for content keys: mode, size and raw pixels."""
    buf = io.BytesIO()
    buf.write(f"{img.mode}:{img.size[0]}x{img.size[1]}:".encode())
    buf.write(img.tobytes())
    return buf.getvalue()


def records_to_prompts(
    records: Sequence[Any],
    processor: Any,
    *,
    instruction: str | None = "default",
    system_prompt: str | None = None,
    namespace: str = "",
) -> list[PromptInput]:
    """One :class:`PromptInput` per record: templated text (with image slots), images, a stable key (the
    record's id, else a hash of text + image pixels) and the text-only variant for the cross-modal term."""
    instr = resolve_instruction(instruction)
    prompts = []
    for rec in records:
        n_img = len(rec.images)
        text = build_prompt(processor, rec.question, n_img, instr, system_prompt=system_prompt)
        text_only = build_prompt(
            processor, rec.question.replace("<image>", ""), 0, instr, system_prompt=system_prompt
        )
        rid = getattr(rec, "id", None)
        key = prompt_key(text, [image_bytes(im) for im in rec.images], dataset_id=rid, namespace=namespace)
        prompts.append(
            PromptInput(key=key, text=text, images=list(rec.images), text_without_images=text_only)
        )
    return prompts

"""Concatenate rollout batches generated separately (e.g. per seeded chunk) into one batch."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from mssr.rollout.batch import PromptStore, RolloutBatch

_RESPONSE_FLOATS = ("response_mask", "rollout_logprobs")


def _pad_cols(x: torch.Tensor, width: int, value: float | int, *, left: bool) -> torch.Tensor:
    extra = width - x.shape[1]
    if extra <= 0:
        return x
    pad = torch.full((x.shape[0], extra), value, dtype=x.dtype, device=x.device)
    return torch.cat([pad, x] if left else [x, pad], dim=1)


def concat_batches(batches: Sequence[RolloutBatch]) -> RolloutBatch:
    """One batch holding every row of ``batches`` in order. Prompt columns are re-left-padded and response
    columns re-right-padded to the widest; ``prompt_index`` and ``prompt_slot`` are offset so that they index
    the concatenation of the batches' prompt lists. Each input must come straight from ``generate`` (one slot
    per prompt, ``prompt_index == prompt_slot``), not from ``select``."""
    if not batches:
        raise ValueError("nothing to concatenate")
    if len(batches) == 1:
        return batches[0]
    _check_compatible(batches)
    first = batches[0]
    p_max = max(b.prompt_length for b in batches)
    t_max = max(b.response_length for b in batches)
    pad = first.pad_token_id
    cols: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("input_ids", "attention_mask", "mm_token_type_ids", "response_ids")
    }
    floats: dict[str, list[torch.Tensor]] = {k: [] for k in _RESPONSE_FLOATS}
    prompt_index, prompt_slot = [], []
    offset = 0
    for b in batches:
        for name, value in (("input_ids", pad), ("attention_mask", 0)):
            cols[name].append(_repad(getattr(b, name), b.prompt_length, p_max, t_max, value))
        if b.mm_token_type_ids is not None:
            cols["mm_token_type_ids"].append(_repad(b.mm_token_type_ids, b.prompt_length, p_max, t_max, 0))
        cols["response_ids"].append(_pad_cols(b.response_ids, t_max, pad, left=False))
        for name in _RESPONSE_FLOATS:
            v = getattr(b, name)
            floats[name].append(None if v is None else _pad_cols(v, t_max, 0.0, left=False))
        prompt_index.append(b.prompt_index + offset)
        prompt_slot.append(b.prompt_slot + offset)
        offset += len(b.prompts)
    mm_parts = cols["mm_token_type_ids"]
    if mm_parts and len(mm_parts) != len(batches):
        raise ValueError("some batches carry mm_token_type_ids and others do not")
    return dataclasses.replace(
        first,
        prompt_index=torch.cat(prompt_index),
        keys=[k for b in batches for k in b.keys],
        input_ids=torch.cat(cols["input_ids"]),
        attention_mask=torch.cat(cols["attention_mask"]),
        response_ids=torch.cat(cols["response_ids"]),
        response_mask=torch.cat(floats["response_mask"]),
        response_text=[t for b in batches for t in b.response_text],
        truncated=torch.cat([b.truncated for b in batches]),
        prompts=_concat_prompts(batches),
        prompt_slot=torch.cat(prompt_slot),
        mm_token_type_ids=torch.cat(mm_parts) if mm_parts else None,
        **{
            name: (torch.cat(parts) if all(p is not None for p in parts) else None)
            for name, parts in floats.items()
            if name != "response_mask"
        },
    )


def _check_compatible(batches: Sequence[RolloutBatch]) -> None:
    """Batches concatenate only when they come from the same model family and sampling settings."""
    first = batches[0]
    for b in batches[1:]:
        if (b.pad_token_id, b.temperature, tuple(b.suppress_token_ids)) != (
            first.pad_token_id,
            first.temperature,
            tuple(first.suppress_token_ids),
        ):
            raise ValueError("batches differ in pad token, temperature or suppressed tokens")
        if (b.prompts.pixel_layout, b.token_types_key) != (first.prompts.pixel_layout, first.token_types_key):
            raise ValueError("batches differ in pixel layout or token-type key (different model families)")
        if (b.prompts.slot_units is None) != (first.prompts.slot_units is None):
            raise ValueError("some batches count pixel rows per prompt (slot_units) and others do not")


def _repad(t: torch.Tensor, p: int, p_max: int, t_max: int, value: float) -> torch.Tensor:
    """A ``[B, prompt + response]`` column set with its first ``p`` (prompt) columns left-padded to ``p_max``
    and the rest (response) right-padded to ``t_max``."""
    return torch.cat(
        [_pad_cols(t[:, :p], p_max, value, left=True), _pad_cols(t[:, p:], t_max, value, left=False)], 1
    )


def _concat_prompts(batches: Sequence[RolloutBatch]) -> PromptStore:
    """The batches' prompt stores (pixels, grids, image counts, text-only ids) as one, in order."""
    pixel_values, grids, units = [], [], []
    for b in batches:
        if b.prompts.pixel_values is not None:
            pixel_values.append(b.prompts.pixel_values)
            if b.prompts.image_grid_thw is not None:
                grids.append(b.prompts.image_grid_thw)
        if b.prompts.slot_units is not None:
            units.append(b.prompts.slot_units)
    return PromptStore(
        pixel_values=torch.cat(pixel_values) if pixel_values else None,
        image_grid_thw=torch.cat(grids) if grids else None,
        n_images=torch.cat([b.prompts.n_images for b in batches]),
        text_only_ids=[i for b in batches for i in b.prompts.text_only_ids],
        pixel_layout=batches[0].prompts.pixel_layout,
        slot_units=torch.cat(units) if units else None,
    )

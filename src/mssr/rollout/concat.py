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
    p_max = max(b.prompt_length for b in batches)
    t_max = max(b.response_length for b in batches)
    pad = first.pad_token_id
    cols: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("input_ids", "attention_mask", "mm_token_type_ids", "response_ids")
    }
    floats: dict[str, list[torch.Tensor]] = {k: [] for k in _RESPONSE_FLOATS}
    prompt_index, prompt_slot, truncated = [], [], []
    keys, texts = [], []
    pixel_values, grids, n_images, text_only, units = [], [], [], [], []
    offset = slot_offset = 0
    for b in batches:
        p = b.prompt_length
        for name, value in (("input_ids", pad), ("attention_mask", 0)):
            t = getattr(b, name)
            cols[name].append(
                torch.cat(
                    [
                        _pad_cols(t[:, :p], p_max, value, left=True),
                        _pad_cols(t[:, p:], t_max, value, left=False),
                    ],
                    1,
                )
            )
        if b.mm_token_type_ids is not None:
            mm = b.mm_token_type_ids
            cols["mm_token_type_ids"].append(
                torch.cat(
                    [_pad_cols(mm[:, :p], p_max, 0, left=True), _pad_cols(mm[:, p:], t_max, 0, left=False)], 1
                )
            )
        cols["response_ids"].append(_pad_cols(b.response_ids, t_max, pad, left=False))
        for name in _RESPONSE_FLOATS:
            v = getattr(b, name)
            floats[name].append(None if v is None else _pad_cols(v, t_max, 0.0, left=False))
        prompt_index.append(b.prompt_index + offset)
        prompt_slot.append(b.prompt_slot + slot_offset)
        slot_offset += len(b.prompts)
        truncated.append(b.truncated)
        keys.extend(b.keys)
        texts.extend(b.response_text)
        if b.prompts.pixel_values is not None:
            pixel_values.append(b.prompts.pixel_values)
            if b.prompts.image_grid_thw is not None:
                grids.append(b.prompts.image_grid_thw)
        if b.prompts.slot_units is not None:
            units.append(b.prompts.slot_units)
        n_images.append(b.prompts.n_images)
        text_only.extend(b.prompts.text_only_ids)
        offset += len(b.prompts)
    mm_parts = cols["mm_token_type_ids"]
    if mm_parts and len(mm_parts) != len(batches):
        raise ValueError("some batches carry mm_token_type_ids and others do not")
    store = PromptStore(
        pixel_values=torch.cat(pixel_values) if pixel_values else None,
        image_grid_thw=torch.cat(grids) if grids else None,
        n_images=torch.cat(n_images),
        text_only_ids=text_only,
        pixel_layout=first.prompts.pixel_layout,
        slot_units=torch.cat(units) if units else None,
    )
    return dataclasses.replace(
        first,
        prompt_index=torch.cat(prompt_index),
        keys=keys,
        input_ids=torch.cat(cols["input_ids"]),
        attention_mask=torch.cat(cols["attention_mask"]),
        response_ids=torch.cat(cols["response_ids"]),
        response_mask=torch.cat(floats["response_mask"]),
        response_text=texts,
        truncated=torch.cat(truncated),
        prompts=store,
        prompt_slot=torch.cat(prompt_slot),
        mm_token_type_ids=torch.cat(mm_parts) if mm_parts else None,
        **{
            name: (torch.cat(parts) if all(p is not None for p in parts) else None)
            for name, parts in floats.items()
            if name != "response_mask"
        },
    )

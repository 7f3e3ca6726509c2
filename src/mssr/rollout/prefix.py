"""Shared-prompt forwards: each distinct prompt runs once, its KV cache serves every response to it.

A group method samples n responses per prompt, so a batch of rows repeats each prompt (image included) n
times. Attention is causal, so a prompt's keys and values do not depend on the response that follows it:
running the distinct prompts once (the "heads"), then copying their cache to the rows and running only
the responses on top gives the same logits as running every full row, for a fraction of the compute
(docs/benchmarks.md, levers 2 and 3). Gradients reach the prompt positions through the cache.

Positions follow the model: Qwen2-VL-family models take M-RoPE positions ``[3, B, L]`` from their
`get_rope_index` (text after the last image continues from the largest position + 1); a prompt without
images, or a model without `get_rope_index`, takes 1-D positions that skip left padding. A response token
j sits at (last prompt position) + 1 + j in every case, which is what a full-row forward computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


def group_rows(slots: torch.Tensor) -> tuple[list[int], torch.Tensor]:
    """``(head_rows, row_to_head)``: the first row of each distinct slot (in order of appearance) and,
    for each row, the index of its head among them."""
    heads: dict[int, int] = {}
    head_rows: list[int] = []
    index: list[int] = []
    for r, s in enumerate(slots.tolist()):
        if s not in heads:
            heads[s] = len(head_rows)
            head_rows.append(r)
        index.append(heads[s])
    return head_rows, torch.tensor(index, dtype=torch.long)


def prompt_positions(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    vision: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Position ids of a left-padded prompt batch: ``[3, B, L]`` M-RoPE for a Qwen2-VL-family model given
    images, else ``[B, L]`` counting only attended tokens (left padding sits at 0)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft PeftModel
    get_rope_index = getattr(getattr(inner, "model", None), "get_rope_index", None)
    vision = vision or {}
    if get_rope_index is not None and "image_grid_thw" in vision and "mm_token_type_ids" in vision:
        positions, _ = get_rope_index(
            input_ids,
            mm_token_type_ids=vision["mm_token_type_ids"],
            image_grid_thw=vision["image_grid_thw"],
            attention_mask=attention_mask,
        )
        return positions
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def next_positions(positions: torch.Tensor, steps: int, start: int = 0) -> torch.Tensor:
    """Positions of continuation tokens ``start … start+steps-1`` after the prompt whose positions are
    `positions` (``[B, L]`` or ``[3, B, L]``; the last column is a real token under left padding)."""
    offsets = torch.arange(start + 1, start + 1 + steps, device=positions.device)
    return positions[..., -1:] + offsets


def _cache_of(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


@dataclass
class PromptCache:
    """What a prompt prefill leaves for the continuation: the rows' cache and bookkeeping.

    Attributes:
        cache: the KV cache, already expanded to one entry per row.
        last_logits: ``[rows, V]`` logits predicting the first continuation token.
        attention_mask: ``[rows, L]`` the prompt part of every row's attention mask.
        positions: ``[rows, L]`` or ``[3, rows, L]`` the prompt positions of every row.
    """

    cache: Any
    last_logits: torch.Tensor
    attention_mask: torch.Tensor
    positions: torch.Tensor


def prefill(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    vision: dict[str, torch.Tensor] | None,
    row_to_head: torch.Tensor,
) -> PromptCache:
    """Run the distinct prompts (`input_ids`, left-padded, one row per head) once and copy their cache to
    the rows (``row_to_head[r]`` = head of row r). Differentiable when grad is enabled."""
    vision = dict(vision or {})
    positions = prompt_positions(model, input_ids, attention_mask, vision)
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **vision,
    )
    cache = _cache_of(out)
    index = row_to_head.to(input_ids.device)
    if index.numel() != input_ids.shape[0] or not torch.equal(
        index, torch.arange(input_ids.shape[0], device=index.device)
    ):
        cache.batch_select_indices(index)
    batch_dim = positions.dim() - 2
    return PromptCache(
        cache=cache,
        last_logits=out.logits[:, -1].index_select(0, index),
        attention_mask=attention_mask.index_select(0, index),
        positions=positions.index_select(batch_dim, index),
    )


def continue_forward(
    model: nn.Module, state: PromptCache, tokens: torch.Tensor, token_mask: torch.Tensor, start: int
) -> torch.Tensor:
    """Logits ``[rows, k, V]`` after feeding continuation tokens ``start … start+k-1`` (`tokens` ``[rows, k]``,
    `token_mask` the rows' attention mask over every continuation token fed so far, ``[rows, start+k]``).
    Appends to ``state.cache``."""
    k = tokens.shape[1]
    mask = torch.cat([state.attention_mask, token_mask.to(state.attention_mask.dtype)], dim=1)
    out = model(
        input_ids=tokens,
        attention_mask=mask,
        position_ids=next_positions(state.positions, k, start),
        cache=state.cache,
        use_cache=True,
    )
    return out.logits

"""Micro-batches under a token budget (``optim.micro_batch_tokens``; verl's ``use_dynamic_bsz`` /
``ppo_max_token_len_per_gpu``, EasyR1's packing by token count).

A forward over a micro-batch pads every row to the micro-batch's longest prompt and longest response
(:func:`mssr.rollout.logprobs.response_logits` trims to them), so its cost — activations, logits — is
``rows × (longest prompt + longest response)`` tokens. :func:`plan_micro_batches` sorts the rows by length and
fills each micro-batch while that padded size stays within the budget; a row longer than the budget on its own
gets a micro-batch to itself. Losses are aggregated with the mini-batch's global normalisers
(:func:`mssr.algos.losses.agg_loss`), so any partition gives the same loss and gradient up to float rounding.
Pure functions: the plan depends only on the lengths.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def row_lengths(batch) -> tuple[list[int], list[int]]:
    """Prompt tokens (non-padding) and response tokens (masked) of every row of a ``RolloutBatch``."""
    p = batch.prompt_length
    prompt = batch.attention_mask[:, :p].sum(dim=1).long().tolist()
    response = (batch.response_mask > 0).sum(dim=1).long().tolist()
    return prompt, response


def padded_tokens(rows: Sequence[int], prompt: Sequence[int], response: Sequence[int]) -> int:
    """The padded size of a forward over ``rows``: ``len(rows) × (longest prompt + longest response)``."""
    if not rows:
        return 0
    return len(rows) * (max(prompt[r] for r in rows) + max(max(response[r] for r in rows), 1))


def plan_micro_batches(
    rows: Sequence[int],
    prompt: Sequence[int],
    response: Sequence[int],
    *,
    max_rows: int,
    max_tokens: int | None = None,
) -> list[list[int]]:
    """Split ``rows`` into micro-batches.

    ``max_tokens=None``: consecutive chunks of ``max_rows`` rows in the given order (row-count batching).
    Otherwise: rows sorted by total length (longest first, ties by position), each micro-batch filled while its
    :func:`padded_tokens` stays ``<= max_tokens``; ``max_rows`` is then not used. Rows keep their order inside
    a micro-batch.
    """
    rows = list(rows)
    if max_tokens is None:
        return [rows[i : i + max_rows] for i in range(0, len(rows), max_rows)]
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    pos = {r: i for i, r in enumerate(rows)}
    order = sorted(rows, key=lambda r: (-(prompt[r] + response[r]), pos[r]))
    plan: list[list[int]] = []
    current: list[int] = []
    for r in order:
        if current and padded_tokens([*current, r], prompt, response) > max_tokens:
            plan.append(sorted(current, key=pos.__getitem__))
            current = []
        current.append(r)
    if current:
        plan.append(sorted(current, key=pos.__getitem__))
    return plan


def scatter_rows(parts: Sequence[torch.Tensor], plan: Sequence[Sequence[int]], n: int) -> torch.Tensor:
    """Put per-micro-batch results (``[len(mb), ...]`` each) back into row order ``[n, ...]``."""
    first = parts[0]
    out = first.new_zeros((n, *first.shape[1:]))
    for part, mb in zip(parts, plan, strict=True):
        out[torch.as_tensor(list(mb), dtype=torch.long, device=out.device)] = part
    return out

"""Teacher-forced scoring of rollout responses: per-token log-probs and entropies.

One forward over ``[prompt | response]`` gives, for each response token o_t, ℓ_t = log π(o_t | x, o_<t)
(docs/method.md "Setting") under the distribution the engine sampled from: logits divided by the sampling
temperature (as verl does) and the engine's suppressed tokens masked to -inf. Entropies (docs/method.md §4):
``sampled`` = −p_t log p_t with p_t = exp(ℓ_t); ``full`` = −Σ_v π(v) log π(v), computed in chunks of
positions so no second ``B×T×V`` float tensor is materialised.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mssr.algos.entropy import sampled_token_entropy
from mssr.rollout.batch import RolloutBatch
from mssr.rollout.prefix import continue_forward, group_rows, prefill

EntropyMode = Literal["none", "sampled", "full"]
_ENTROPY_MODES = ("none", "sampled", "full")

# Elements of one float32 chunk of logits processed at a time (~64 MiB); see `token_stats`.
DEFAULT_CHUNK_ELEMENTS = 1 << 24


@dataclass
class LogprobOutput:
    """Per-response-token scores, ``[N, T]`` aligned with `RolloutBatch.response_ids`, 0 where masked.

    Attributes:
        logprobs: ℓ_t.
        entropy: −p log p of the sampled token (`entropy_mode == "sampled"`), the full-vocabulary entropy
            (`"full"`), or ``None`` (`"none"`).
        entropy_mode: which entropy `entropy` holds.
    """

    logprobs: torch.Tensor
    entropy: torch.Tensor | None
    entropy_mode: EntropyMode


def token_stats(
    logits: torch.Tensor,
    tokens: torch.Tensor,
    *,
    temperature: float = 1.0,
    suppress_token_ids: Sequence[int] = (),
    full_entropy: bool = False,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-prob of `tokens` and (optionally) full entropy under ``softmax(logits / temperature)``.

    Args:
        logits: ``[..., V]`` (any float dtype; computed in float32).
        tokens: ``[...]`` token ids, same leading shape.
        temperature: divides the logits.
        suppress_token_ids: vocabulary entries masked to -inf (probability 0) before the softmax.
        full_entropy: also return H = −Σ_v π(v) log π(v) = logsumexp(z) − Σ_v π(v) z_v.
        chunk_elements: positions are processed in chunks of about this many logits, so the float32 copies
            (scaled logits, probabilities) exist for one chunk at a time.

    Returns:
        ``(logprobs, entropy or None)``, each of the leading shape, float32, differentiable w.r.t. `logits`.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    lead = logits.shape[:-1]
    vocab = logits.shape[-1]
    if tokens.shape != lead:
        raise ValueError(f"tokens shape {tuple(tokens.shape)} does not match logits {tuple(logits.shape)}")
    flat = logits.reshape(-1, vocab)
    flat_tokens = tokens.reshape(-1, 1)
    suppress = torch.as_tensor(list(suppress_token_ids), dtype=torch.long, device=logits.device)
    if suppress.numel() and (int(suppress.min()) < 0 or int(suppress.max()) >= vocab):
        raise ValueError(f"suppress_token_ids {suppress.tolist()} outside the vocabulary of size {vocab}")
    step = max(1, chunk_elements // vocab)
    logprob_chunks: list[torch.Tensor] = []
    entropy_chunks: list[torch.Tensor] = []
    for start in range(0, flat.shape[0], step):
        z = flat[start : start + step].float() / temperature  # a fresh float32 tensor (div is out of place)
        masked = z.index_fill(-1, suppress, float("-inf")) if suppress.numel() else z
        lse = torch.logsumexp(masked, dim=-1)
        logprob_chunks.append(masked.gather(-1, flat_tokens[start : start + step]).squeeze(-1) - lse)
        if full_entropy:
            probs = torch.softmax(masked, dim=-1)  # exactly 0 on suppressed entries; z stays finite there
            entropy_chunks.append(lse - (probs * z).sum(-1))
    logprobs = torch.cat(logprob_chunks).reshape(lead) if logprob_chunks else flat.new_zeros(lead).float()
    if not full_entropy:
        return logprobs, None
    entropy = torch.cat(entropy_chunks).reshape(lead) if entropy_chunks else flat.new_zeros(lead).float()
    return logprobs, entropy


def _trim(batch: RolloutBatch) -> tuple[int, int]:
    """Columns worth feeding: first prompt column that any row uses, and the longest response (≥ 1)."""
    p = batch.prompt_length
    used = batch.attention_mask[:, :p].any(dim=0).nonzero()
    first = int(used[0]) if used.numel() else p
    lengths = batch.response_mask.sum(dim=1)
    t_used = int(lengths.max().item()) if lengths.numel() else 0
    return first, max(t_used, 1)


def response_logits(
    model: nn.Module, batch: RolloutBatch, *, use_logits_to_keep: bool = True
) -> torch.Tensor:
    """Logits ``[N, T', V]`` predicting response tokens 0..T'-1 (T' = longest response in `batch`).

    Feeds ``input_ids[:, first_used_prompt_col : P + T' - 1]`` (the last response token is never an
    input whose prediction matters) and, with `use_logits_to_keep`, asks the model for the last T'
    positions only, so the LM head never runs over prompt (image) positions.
    """
    first, t_used = _trim(batch)
    p = batch.prompt_length
    end = p + t_used - 1
    input_ids = batch.input_ids[:, first:end]
    attention_mask = batch.attention_mask[:, first:end]
    kwargs: dict[str, object] = {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": False}
    vision = batch.vision_inputs()
    if vision:
        kwargs.update(vision)
        key = batch.token_types_key
        if key in vision:
            kwargs[key] = vision[key][:, first:end]
        if "image_grid_thw" not in vision:
            # families with 1-D positions (Gemma 3, Idefics3): positions skip left padding, as in generation
            kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    else:
        # Text only: positions must skip left padding (the model's default arange would not).
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        kwargs["position_ids"] = position_ids
    if use_logits_to_keep:
        kwargs["logits_to_keep"] = t_used
    logits = model(**kwargs).logits
    return logits[:, -t_used:]


def shared_prompt_response_logits(model: nn.Module, batch: RolloutBatch) -> torch.Tensor:
    """`response_logits` with each distinct prompt of `batch` run once (`mssr.rollout.prefix`).

    The prompts (images included) go through one forward, one row per distinct `prompt_slot`; their KV
    cache is copied to the rows and the responses run on top. Same logits as `response_logits` up to
    floating-point reordering; gradients reach the prompt positions through the cache.
    """
    first, t_used = _trim(batch)
    p = batch.prompt_length
    head_rows, row_to_head = group_rows(batch.prompt_slot)
    heads = batch.select(head_rows)
    vision = heads.vision_inputs()
    if batch.token_types_key in vision:
        vision[batch.token_types_key] = vision[batch.token_types_key][:, first:p]
    state = prefill(
        model,
        heads.input_ids[:, first:p],
        heads.attention_mask[:, first:p],
        vision,
        row_to_head.to(batch.input_ids.device),
    )
    logits = state.last_logits[:, None]
    if t_used > 1:
        rest = continue_forward(
            model,
            state,
            batch.response_ids[:, : t_used - 1],
            batch.attention_mask[:, p : p + t_used - 1],
            start=0,
        )
        logits = torch.cat([logits, rest], dim=1)
    return logits


def _has_shared_prompts(batch: RolloutBatch) -> bool:
    return int(torch.unique(batch.prompt_slot).numel()) < len(batch)


def compute_logprobs(
    model: nn.Module,
    batch: RolloutBatch,
    *,
    micro_batch_size: int = 16,
    entropy: EntropyMode = "none",
    temperature: float | None = None,
    requires_grad: bool = False,
    suppress_token_ids: Sequence[int] | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    share_prompts: bool = True,
    device: torch.device | None = None,
    micro_batches: Sequence[Sequence[int]] | None = None,
) -> LogprobOutput:
    """Teacher-forced log-probs (and entropies) of `batch`'s response tokens under `model`.

    Args:
        model: a causal VLM taking ``input_ids, attention_mask`` (+ the batch's vision inputs) and
            ``logits_to_keep``; unwrapped (not DDP) or wrapped, its `forward` is called as is.
        batch: the responses to score.
        micro_batch_size: rows per forward when `requires_grad` is False.
        entropy: ``"none"``, ``"sampled"`` (−p log p of the sampled token) or ``"full"`` (vocabulary entropy).
        temperature: divides the logits; ``None`` uses `batch.temperature` (the sampling temperature).
        requires_grad: the training forward: the whole `batch` goes through ONE forward with autograd on
            and the returned tensors are attached to the graph (the caller loops over micro-batches,
            e.g. with `batch.select`). Otherwise no gradient, `micro_batch_size` rows at a time.
        suppress_token_ids: logits masked to -inf; ``None`` uses `batch.suppress_token_ids` (what the engine
            suppressed while sampling), ``()`` masks nothing.
        chunk_elements: chunk size of the log-softmax / entropy computation (see `token_stats`).
        share_prompts: run a prompt shared by several rows of a forward once and reuse its KV cache
            (`shared_prompt_response_logits`); ``False`` runs every row's full sequence.
        micro_batches: row groups to run one forward each (a token-budget plan,
            :func:`mssr.rollout.micro_batches.plan_micro_batches`); results come back in row order. ``None``:
            consecutive chunks of `micro_batch_size` rows.
        device: where the inputs go; ``None`` = the device of the model's first parameter (give it when the
            parameters live elsewhere, e.g. FSDP with CPU offload).

    Returns:
        `LogprobOutput` with ``[N, T]`` float32 tensors on the model's device (each micro-batch is moved
        there), 0 where `batch.response_mask` is 0.
    """
    if entropy not in _ENTROPY_MODES:
        raise ValueError(f"entropy must be one of {_ENTROPY_MODES}, got {entropy!r}")
    if micro_batch_size < 1:
        raise ValueError(f"micro_batch_size must be >= 1, got {micro_batch_size}")
    temp = batch.temperature if temperature is None else float(temperature)
    suppress = tuple(batch.suppress_token_ids if suppress_token_ids is None else suppress_token_ids)

    device = device if device is not None else next(model.parameters()).device
    score = functools.partial(
        _score_rows,
        model,
        device=device,
        share_prompts=share_prompts,
        temperature=temp,
        suppress=suppress,
        entropy=entropy,
        chunk_elements=chunk_elements,
    )
    if requires_grad:
        with torch.enable_grad():
            lp, ent = score(batch)
        return LogprobOutput(lp, ent, entropy)
    plan = (
        [list(mb) for mb in micro_batches]
        if micro_batches is not None
        else [
            list(range(s, min(s + micro_batch_size, len(batch))))
            for s in range(0, len(batch), micro_batch_size)
        ]
    )
    return _no_grad_passes(score, batch, plan, entropy, device, in_row_order=micro_batches is None)


def _score_rows(
    model: nn.Module,
    mb: RolloutBatch,
    *,
    device: torch.device,
    share_prompts: bool,
    temperature: float,
    suppress: tuple[int, ...],
    entropy: EntropyMode,
    chunk_elements: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One forward over the rows of ``mb``: their response log-probs and entropies, 0 outside the mask."""
    mb = mb.to(device)  # no copy when already there
    if share_prompts and _has_shared_prompts(mb):
        logits = shared_prompt_response_logits(model, mb)
    else:
        logits = response_logits(model, mb)
    t_used = logits.shape[1]
    tokens = mb.response_ids[:, :t_used].to(logits.device)
    mask = mb.response_mask[:, :t_used].to(logits.device) > 0
    lp, full = token_stats(
        logits,
        tokens,
        temperature=temperature,
        suppress_token_ids=suppress,
        full_entropy=entropy == "full",
        chunk_elements=chunk_elements,
    )
    ent = sampled_token_entropy(lp) if entropy == "sampled" else full
    pad = mb.response_length - t_used
    lp = F.pad(torch.where(mask, lp, torch.zeros_like(lp)), (0, pad))
    if ent is not None:
        ent = F.pad(torch.where(mask, ent, torch.zeros_like(ent)), (0, pad))
    return lp, ent


def _no_grad_passes(
    score: Callable[[RolloutBatch], tuple[torch.Tensor, torch.Tensor | None]],
    batch: RolloutBatch,
    plan: list[list[int]],
    entropy: EntropyMode,
    device: torch.device,
    *,
    in_row_order: bool,
) -> LogprobOutput:
    """``score`` over each row group of ``plan`` without gradients, the results put back in row order."""
    lps: list[torch.Tensor] = []
    ents: list[torch.Tensor] = []
    with torch.no_grad():
        for rows in plan:
            lp, ent = score(batch.select(rows))
            lps.append(lp)
            if ent is not None:
                ents.append(ent)
    if not lps:
        empty = torch.zeros(batch.response_ids.shape, dtype=torch.float32, device=device)
        return LogprobOutput(empty, empty.clone() if entropy != "none" else None, entropy)
    if not in_row_order:
        from mssr.rollout.micro_batches import scatter_rows

        n = len(batch)
        return LogprobOutput(
            scatter_rows(lps, plan, n), scatter_rows(ents, plan, n) if ents else None, entropy
        )
    return LogprobOutput(torch.cat(lps), torch.cat(ents) if ents else None, entropy)

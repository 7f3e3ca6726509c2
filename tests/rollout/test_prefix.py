"""Shared-prompt forwards (`mssr.rollout.prefix`) against the per-row references they replace.

References: transformers' `generate` on every row (the engine's `share_prompts=False` path) for decoding,
a full-row forward (`share_prompts=False`) for teacher forcing, transformers' own logits warpers for the
sampler's processing.
"""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import (
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from mssr.rollout import HFRolloutEngine, compute_logprobs
from mssr.rollout.engine import process_logits
from mssr.rollout.prefix import group_rows


@pytest.fixture(params=["qwen2_5_vl", "qwen2_vl"])
def family(request, model, processor, prompts, qwen2vl):
    if request.param == "qwen2_5_vl":
        return model, processor, prompts
    return qwen2vl


def test_group_rows_any_order():
    heads, index = group_rows(torch.tensor([3, 3, 1, 3, 0, 1]))
    assert heads == [0, 2, 4]
    assert index.tolist() == [0, 0, 1, 0, 2, 1]


@pytest.mark.parametrize(
    "temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.3, 0, 0.8), (0.9, 7, 0.6), (1.0, 0, 0.05)]
)
def test_process_logits_matches_transformers_warpers(temperature, top_k, top_p):
    g = torch.Generator().manual_seed(int(temperature * 10) + top_k)
    logits = torch.randn(6, 40, generator=g) * 3
    logits[0, :4] = 2.0  # ties at the top-k / top-p boundaries
    suppress = [1, 5, 39]
    ids = torch.zeros((6, 1), dtype=torch.long)
    ref = SuppressTokensLogitsProcessor(suppress)(ids, logits.clone())
    ref = TemperatureLogitsWarper(temperature)(ids, ref)
    if top_k:
        ref = TopKLogitsWarper(top_k)(ids, ref)
    if top_p < 1:
        ref = TopPLogitsWarper(top_p)(ids, ref)
    got = process_logits(
        logits, temperature=temperature, top_k=top_k, top_p=top_p, suppress_token_ids=suppress
    )
    assert torch.equal(torch.isinf(got), torch.isinf(ref))
    finite = torch.isfinite(ref)
    assert torch.allclose(got[finite], ref[finite], atol=1e-6)


def test_greedy_decoding_equals_generate_on_every_row(family):
    model, processor, prompts = family
    shared = HFRolloutEngine(model, processor).generate(prompts, n=2, greedy=True, max_new_tokens=12)
    rows = HFRolloutEngine(model, processor, share_prompts=False).generate(
        prompts, n=2, greedy=True, max_new_tokens=12
    )
    assert torch.equal(shared.response_ids, rows.response_ids)
    assert torch.equal(shared.response_mask, rows.response_mask)
    assert torch.equal(shared.input_ids, rows.input_ids)
    assert torch.equal(shared.truncated, rows.truncated)


def test_sampled_rows_follow_each_prompt_and_logprobs_match_teacher_forcing(family):
    model, processor, prompts = family
    batch = HFRolloutEngine(model, processor).generate(
        prompts,
        n=4,
        temperature=1.0,
        top_p=0.9,
        max_new_tokens=10,
        batch_size=6,
        seed=5,
        return_logprobs=True,
    )
    assert batch.prompt_index.tolist() == [i for i in range(len(prompts)) for _ in range(4)]
    mask = batch.response_mask > 0
    # Scored by full rows (no sharing) under the unfiltered softmax: top-p renormalises over a subset, so
    # the sampler's log-prob is >= the full-softmax one.
    plain = compute_logprobs(model, batch, micro_batch_size=5, share_prompts=False)
    assert batch.rollout_logprobs is not None
    # Without top-p the two must agree: the loop's log-probs are those of the distribution it drew from.
    unfiltered = HFRolloutEngine(model, processor).generate(
        prompts, n=4, temperature=1.0, max_new_tokens=10, batch_size=6, seed=5, return_logprobs=True
    )
    tf = compute_logprobs(model, unfiltered, micro_batch_size=5, share_prompts=False).logprobs
    umask = unfiltered.response_mask > 0
    assert (tf - unfiltered.rollout_logprobs).abs()[umask].max() < 1e-4
    assert (plain.logprobs[mask] <= batch.rollout_logprobs[mask] + 1e-4).all()
    # the n responses of a prompt differ (they were sampled, not copied)
    distinct = {tuple(batch.response_ids[r].tolist()) for r in range(4 * 2, 4 * 3)}
    assert len(distinct) > 1


def test_teacher_forced_shared_equals_full_rows(family):
    model, processor, prompts = family
    batch = HFRolloutEngine(model, processor).generate(prompts, n=3, max_new_tokens=9, seed=2)
    order = [5, 0, 7, 1, 2, 9, 11, 3, 4, 10, 6, 8]  # groups split over micro-batches, rows out of order
    mixed = batch.select(order)
    for mode in ("none", "full"):
        a = compute_logprobs(model, mixed, micro_batch_size=5, entropy=mode, share_prompts=False)
        b = compute_logprobs(model, mixed, micro_batch_size=5, entropy=mode, share_prompts=True)
        assert (a.logprobs - b.logprobs).abs().max() < 1e-5
        if mode == "full":
            assert (a.entropy - b.entropy).abs().max() < 1e-5
    text = batch.text_only()  # no images: 1-D positions over left padding
    a = compute_logprobs(model, text, micro_batch_size=6, share_prompts=False).logprobs
    b = compute_logprobs(model, text, micro_batch_size=6, share_prompts=True).logprobs
    assert (a - b).abs().max() < 1e-5


def test_seeded_shared_generation_is_reproducible(model, processor, prompts):
    engine = HFRolloutEngine(model, processor)
    a = engine.generate(prompts, n=3, max_new_tokens=8, seed=9, batch_size=6)
    b = engine.generate(prompts, n=3, max_new_tokens=8, seed=9, batch_size=6)
    assert torch.equal(a.response_ids, b.response_ids)

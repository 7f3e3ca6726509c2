"""compute_logprobs and RolloutBatch slicing against naive references."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mssr.models import build_prompt
from mssr.rollout import HFRolloutEngine, compute_logprobs, response_logits, token_stats


@pytest.fixture
def batch(model, processor, prompts):
    # n=2 per prompt, sampled at temperature 0.8, so rows have different lengths and both families of rows.
    return HFRolloutEngine(model, processor).generate(
        prompts, n=2, temperature=0.8, max_new_tokens=10, seed=1, batch_size=5
    )


def _naive(model, batch, *, temperature=None, suppress=None):
    """Reference: ONE forward over the untrimmed batch, all logits, float64 log_softmax, explicit loops."""
    temperature = batch.temperature if temperature is None else temperature
    suppress = batch.suppress_token_ids if suppress is None else suppress
    kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    kwargs.update(batch.vision_inputs())
    if "pixel_values" not in kwargs:
        kwargs["position_ids"] = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(**kwargs).logits  # [N, P+T, V], every position
    p, t = batch.prompt_length, batch.response_length
    z = logits[:, p - 1 : p + t - 1].double() / temperature
    z[..., list(suppress)] = float("-inf")
    logp = torch.log_softmax(z, -1)
    lp = logp.gather(-1, batch.response_ids[..., None]).squeeze(-1)
    probs = logp.exp()
    full = -(probs * torch.where(probs > 0, logp, torch.zeros_like(logp))).sum(-1)
    mask = batch.response_mask.double()
    return lp * mask, full * mask


def test_matches_naive_forward_with_all_entropy_modes(model, batch):
    with torch.no_grad():
        ref_lp, ref_full = _naive(model, batch)
    mask = batch.response_mask > 0
    for mode in ("none", "sampled", "full"):
        out = compute_logprobs(model, batch, micro_batch_size=3, entropy=mode, chunk_elements=1000)
        assert out.logprobs.shape == batch.response_ids.shape and out.logprobs.dtype == torch.float32
        assert torch.allclose(out.logprobs.double(), ref_lp, atol=2e-5)
        assert (out.logprobs[~mask] == 0).all()
        if mode == "none":
            assert out.entropy is None
        elif mode == "sampled":
            p = ref_lp.exp()
            assert torch.allclose(out.entropy.double(), (-p * ref_lp) * mask, atol=2e-5)
            assert (out.entropy >= 0).all() and (out.entropy <= 1 / torch.e + 1e-6).all()
        else:
            assert torch.allclose(out.entropy.double(), ref_full, atol=5e-5)
            assert (out.entropy[~mask] == 0).all()


def test_batched_equals_per_sample(model, batch):
    full = compute_logprobs(model, batch, micro_batch_size=len(batch), entropy="full")
    for i in range(len(batch)):
        row = compute_logprobs(model, batch.select([i]), entropy="full")
        assert torch.allclose(row.logprobs[0], full.logprobs[i], atol=1e-5), i
        assert torch.allclose(row.entropy[0], full.entropy[i], atol=1e-5), i


def test_temperature_and_suppression_defaults_come_from_the_batch(model, batch):
    assert batch.temperature == 0.8 and batch.suppress_token_ids
    default = compute_logprobs(model, batch)
    explicit = compute_logprobs(model, batch, temperature=0.8, suppress_token_ids=batch.suppress_token_ids)
    assert torch.equal(default.logprobs, explicit.logprobs)
    with torch.no_grad():
        ref_lp, _ = _naive(model, batch, temperature=1.0, suppress=())
    plain = compute_logprobs(model, batch, temperature=1.0, suppress_token_ids=())
    assert torch.allclose(plain.logprobs.double(), ref_lp, atol=2e-5)
    assert not torch.allclose(plain.logprobs, default.logprobs, atol=1e-3)


def test_logits_to_keep_gives_the_same_logits(model, batch):
    mb = batch.select(range(4))
    with torch.no_grad():
        kept = response_logits(model, mb)
        every = response_logits(model, mb, use_logits_to_keep=False)
    assert kept.shape == every.shape and kept.shape[1] == int(mb.response_mask.sum(1).max())
    assert torch.allclose(kept, every, atol=1e-5)


def test_select_slices_vision_inputs(model, processor, prompts, batch):
    # Rows 4,5 answer prompt "two" (2 images of different sizes); row 1 answers "red"; row 2 has no image.
    sub = batch.select([5, 1, 2, 4])
    assert sub.keys == ["two", "red", "plain", "two"]
    assert len(sub.prompts) == 3  # distinct prompts kept once: two, red, plain
    vision = sub.vision_inputs()
    two = processor(text=[prompts[2].text], images=prompts[2].images, return_tensors="pt")
    red = processor(text=[prompts[0].text], images=prompts[0].images, return_tensors="pt")
    expected_pixels = torch.cat([two["pixel_values"], red["pixel_values"], two["pixel_values"]])
    expected_grid = torch.cat([two["image_grid_thw"], red["image_grid_thw"], two["image_grid_thw"]])
    assert torch.equal(vision["pixel_values"], expected_pixels)
    assert torch.equal(vision["image_grid_thw"], expected_grid)
    assert torch.equal(sub.input_ids, batch.input_ids[[5, 1, 2, 4]])
    assert torch.equal(sub.prompt_index, torch.tensor([2, 0, 1, 2]))
    # A forward on the selection equals the matching rows of the full forward.
    full = compute_logprobs(model, batch, micro_batch_size=len(batch))
    part = compute_logprobs(model, sub, micro_batch_size=len(sub))
    assert torch.allclose(part.logprobs, full.logprobs[[5, 1, 2, 4]], atol=1e-5)
    # Only text: no vision inputs at all.
    assert batch.select([2, 3]).vision_inputs() == {}


def test_select_carries_scores_and_rejects_bad_indices(model, batch):
    out = compute_logprobs(model, batch, entropy="sampled")
    scored = batch.replace(rollout_logprobs=out.logprobs)
    sub = scored.select(torch.tensor([7, 0]))
    assert torch.equal(sub.rollout_logprobs, out.logprobs[[7, 0]])
    assert sub.response_text == [batch.response_text[7], batch.response_text[0]]
    with pytest.raises(IndexError):
        batch.select([len(batch)])


def test_text_only_rebuilds_prompts_without_images(model, processor, prompts, batch):
    plain = batch.text_only()
    vision_ids = torch.tensor(batch.suppress_token_ids)
    assert not torch.isin(plain.input_ids, vision_ids).any()
    assert plain.vision_inputs() == {}
    assert torch.equal(plain.response_ids, batch.response_ids)
    assert torch.equal(plain.response_mask, batch.response_mask)
    p = plain.prompt_length
    questions = ["What color?", "No picture here, just text.", "Two?", "And this one, which color is it?"]
    for r in range(len(plain)):
        q = questions[int(plain.prompt_index[r])]
        expected = processor(text=[build_prompt(processor, q, 0, instruction=None)], return_tensors="pt")
        real = plain.input_ids[r, :p][plain.attention_mask[r, :p].bool()]
        assert torch.equal(real, expected["input_ids"][0])
    with_images = compute_logprobs(model, batch)
    without = compute_logprobs(model, plain)
    gap = (with_images.logprobs - without.logprobs).abs().amax(dim=1)
    has_image = torch.tensor([len(prompts[int(i)].images) > 0 for i in batch.prompt_index])
    assert (gap[has_image] > 1e-2).all()  # the image matters
    assert (gap[~has_image] < 1e-5).all()  # a prompt without images is unchanged


@pytest.mark.parametrize("share_prompts", [False, True])
def test_training_forward_gradients_match_naive(model, batch, share_prompts):
    mb = batch.select(range(6))  # 3 prompts x 2 responses: the shared path runs each prompt once
    mask = mb.response_mask
    out = compute_logprobs(
        model, mb, requires_grad=True, entropy="full", chunk_elements=999, share_prompts=share_prompts
    )
    assert out.logprobs.requires_grad and out.entropy.requires_grad
    loss = (out.logprobs * mask).sum() + 0.5 * (out.entropy * mask).sum()
    grads = torch.autograd.grad(loss, [p for p in model.parameters()], allow_unused=True)
    ref_lp, ref_full = _naive(model, mb)
    ref_loss = (ref_lp * mask).sum() + 0.5 * (ref_full * mask).sum()
    ref_grads = torch.autograd.grad(ref_loss, [p for p in model.parameters()], allow_unused=True)
    names = [n for n, _ in model.named_parameters()]
    for name, g, ref in zip(names, grads, ref_grads, strict=True):
        assert (g is None) == (ref is None), name
        if g is not None:
            # float32 against a float64-softmax reference; the shared-prompt path sums in another order
            # (measured: relative norm error < 1e-6 either way, elementwise up to 1.3e-6 beyond rtol)
            assert torch.allclose(g, ref.float(), atol=1e-5 if share_prompts else 1e-6, rtol=1e-3), name
            assert (g - ref.float()).norm() <= 1e-5 * ref.norm() + 1e-12, name
    visual = [g for n, g in zip(names, grads, strict=True) if ".visual." in n and g is not None]
    assert visual and any(g.abs().sum() > 0 for g in visual)  # gradients reach the vision tower
    # Without requires_grad nothing is attached to a graph.
    assert not compute_logprobs(model, mb).logprobs.requires_grad


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 4),
    cols=st.integers(1, 5),
    vocab=st.integers(2, 17),
    chunk=st.integers(1, 60),
    temperature=st.sampled_from([0.3, 1.0, 1.7]),
    scale=st.sampled_from([0.1, 3.0, 30.0]),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_token_stats_chunked_equals_naive(rows, cols, vocab, chunk, temperature, scale, seed, data):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, cols, vocab, generator=gen) * scale
    suppress = data.draw(st.lists(st.integers(0, vocab - 1), unique=True, max_size=vocab - 1))
    allowed = [v for v in range(vocab) if v not in suppress]
    tokens = torch.tensor(allowed)[torch.randint(len(allowed), (rows, cols), generator=gen)]
    lp, ent = token_stats(
        logits,
        tokens,
        temperature=temperature,
        suppress_token_ids=suppress,
        full_entropy=True,
        chunk_elements=chunk,
    )
    # Transcribed formula over the allowed vocabulary only: π = softmax(z_allowed / T), H = −Σ π log π.
    z = logits[..., allowed].double() / temperature
    logp = torch.log_softmax(z, -1)
    index = torch.tensor([allowed.index(int(t)) for t in tokens.flatten()]).reshape(rows, cols)
    assert torch.allclose(lp.double(), logp.gather(-1, index[..., None]).squeeze(-1), atol=1e-4)
    assert torch.allclose(ent.double(), -(logp.exp() * logp).sum(-1), atol=1e-4)


def test_token_stats_rejects_bad_arguments():
    logits = torch.zeros(2, 3, 5)
    tokens = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="temperature"):
        token_stats(logits, tokens, temperature=0.0)
    with pytest.raises(ValueError, match="vocabulary"):
        token_stats(logits, tokens, suppress_token_ids=[5])
    with pytest.raises(ValueError, match="shape"):
        token_stats(logits, tokens[:, :2])


def test_compute_logprobs_rejects_bad_mode(model, batch):
    with pytest.raises(ValueError, match="entropy"):
        compute_logprobs(model, batch, entropy="sampled-token")

"""HFRolloutEngine against independent references: step-by-step decoding, the model's own distribution."""

from __future__ import annotations

import inspect

import pytest
import torch
from transformers import GenerationConfig

from mssr.rollout import HFRolloutEngine, PromptInput, RolloutBatch, RolloutEngine, compute_logprobs


@pytest.fixture(params=["qwen2_5_vl", "qwen2_vl"])
def family(request, model, processor, prompts, qwen2vl):
    """``(model, processor, prompts)`` of each supported family."""
    if request.param == "qwen2_5_vl":
        return model, processor, prompts
    return qwen2vl


def _single_inputs(processor, prompt: PromptInput) -> dict[str, torch.Tensor]:
    kwargs = {"text": [prompt.text], "return_tensors": "pt"}
    if prompt.images:
        kwargs["images"] = prompt.images
    return dict(processor(**kwargs))


def _manual_greedy(
    model, processor, prompt: PromptInput, suppress: tuple[int, ...], eos: list[int], steps: int
):
    """Greedy decoding by hand: a full forward (no KV cache, no padding) per step, argmax of masked logits."""
    enc = _single_inputs(processor, prompt)
    ids = enc.pop("input_ids")
    types = enc.pop("mm_token_type_ids")
    enc.pop("attention_mask")
    out: list[int] = []
    with torch.no_grad():
        for _ in range(steps):
            kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
            if prompt.images:
                kwargs.update(enc, mm_token_type_ids=types)
            logits = model(**kwargs).logits[0, -1].clone()
            logits[list(suppress)] = float("-inf")
            nxt = int(logits.argmax())
            out.append(nxt)
            if nxt in eos:
                break
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
            types = torch.cat([types, torch.zeros((1, 1), dtype=types.dtype)], dim=1)
    return out


def _bias_logits(model, token_ids: list[int], amount: float):
    """Add `amount` to some logits (a forward hook on the LM head); returns the hook handle."""

    def hook(_module, _inputs, output):
        output = output.clone()
        output[..., token_ids] += amount
        return output

    return model.lm_head.register_forward_hook(hook)


def test_engine_implements_the_protocol(family):
    """Every parameter of ``RolloutEngine.generate`` exists on the engine with the same kind and default (a
    runtime ``isinstance`` only checks that a method of that name exists); extra parameters have defaults, so
    a caller of the protocol can always call the engine; a call returns a ``RolloutBatch`` in prompt order."""
    proto = inspect.signature(RolloutEngine.generate).parameters
    impl = inspect.signature(HFRolloutEngine.generate).parameters
    for name, p in proto.items():
        assert name in impl, f"HFRolloutEngine.generate lacks {name!r}"
        assert (impl[name].kind, impl[name].default) == (p.kind, p.default), name
    for name in impl.keys() - proto.keys():
        assert impl[name].default is not inspect.Parameter.empty, f"extra parameter {name!r} needs a default"
    model, processor, prompts = family
    batch = HFRolloutEngine(model, processor).generate(prompts[:2], n=2, max_new_tokens=3, seed=0)
    assert isinstance(batch, RolloutBatch) and batch.prompt_index.tolist() == [0, 0, 1, 1]


def test_greedy_matches_stepwise_argmax(family):
    model, processor, prompts = family
    engine = HFRolloutEngine(model, processor)
    batch = engine.generate(prompts, greedy=True, max_new_tokens=10, batch_size=3)  # left-padded batches
    eos = engine.eos_token_ids
    for i, prompt in enumerate(prompts):
        expected = _manual_greedy(model, processor, prompt, engine.suppress_token_ids, eos, 10)
        got = batch.response_ids[i, : int(batch.response_mask[i].sum())].tolist()
        assert got == expected, f"prompt {prompt.key}"


def test_logprobs_match_generate_scores_and_ignore_model_generation_config(family):
    model, processor, prompts = family
    # A hub-style generation_config that would change the distribution if it leaked into sampling.
    model.generation_config = GenerationConfig(
        do_sample=True, top_k=1, top_p=0.01, temperature=0.01, repetition_penalty=1.5
    )
    engine = HFRolloutEngine(model, processor)
    batch = engine.generate(
        prompts, n=3, temperature=0.7, max_new_tokens=12, batch_size=5, seed=3, return_logprobs=True
    )
    assert model.generation_config.repetition_penalty == 1.5  # restored
    out = compute_logprobs(model, batch, micro_batch_size=4)
    mask = batch.response_mask > 0
    assert batch.rollout_logprobs is not None
    diff = (out.logprobs - batch.rollout_logprobs).abs()[mask]
    assert diff.max() < 1e-4
    # Sampling really was stochastic (top_k=1 would make every sampled token have log-prob 0).
    assert (batch.rollout_logprobs[mask] < -0.1).float().mean() > 0.2
    assert (out.logprobs[~mask] == 0).all()


def _first_token_probs(model, processor, prompt, suppress, temperature):
    with torch.no_grad():
        logits = model(**_single_inputs(processor, prompt)).logits[0, -1].double() / temperature
    logits[list(suppress)] = float("-inf")
    return torch.softmax(logits, -1)


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_sampling_follows_model_distribution(model, processor, prompts, temperature):
    engine = HFRolloutEngine(model, processor)
    # A 2-token text prompt: the check is about the sampler, and 2000 long prefills are slow on CPU.
    prompt = PromptInput("short", "Hi", [])
    # The random init is near uniform over the vocabulary; scale the logits to a std of 1.5 for structure.
    scale = 1.5 / _first_token_probs(model, processor, prompt, (), 1.0).log().std().item()
    handle = model.lm_head.register_forward_hook(lambda _m, _i, out: out * scale)
    probs = _first_token_probs(model, processor, prompt, engine.suppress_token_ids, temperature)
    assert probs.max() < 0.5 and (probs > 0.005).sum() > 10
    n = 2000
    batch = engine.generate([prompt], n=n, temperature=temperature, max_new_tokens=1, seed=11)
    # The same check must flag a truncated sampler (what the implicit top_k=50 of docs/platform.md pitfall 1 is):
    # a top-k that drops >= 30% of the mass.
    k = int((probs.sort(descending=True).values.cumsum(0) < 0.7).sum())
    truncated = engine.generate([prompt], n=n, temperature=temperature, top_k=k, max_new_tokens=1, seed=11)
    handle.remove()
    # Sampling noise: E[TV] = ½ Σ E|f − p| ≈ ½ Σ sqrt(2 p (1 − p) / (π n)).
    noise = 0.5 * (2 * probs * (1 - probs) / (torch.pi * n)).sqrt().sum().item()

    def tv(b):
        freq = torch.bincount(b.response_ids[:, 0], minlength=probs.numel()).double() / n
        return 0.5 * (freq - probs).abs().sum().item()

    assert tv(batch) < 1.5 * noise, (tv(batch), noise)
    assert tv(truncated) > 1.5 * noise, (tv(truncated), noise)


def test_vision_tokens_never_sampled_and_logprobs_account_for_suppression(model, processor, prompts):
    engine = HFRolloutEngine(model, processor)
    vision_ids = list(engine.suppress_token_ids)
    assert set(vision_ids) == {
        processor.tokenizer.convert_tokens_to_ids(t)
        for t in ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
    }
    handle = _bias_logits(model, vision_ids, 6.0)
    try:
        free = HFRolloutEngine(model, processor, suppress_token_ids=()).generate(
            prompts, n=4, max_new_tokens=8, seed=0
        )
        assert torch.isin(free.response_ids, torch.tensor(vision_ids)).any()  # the bias works
        batch = engine.generate(prompts, n=4, max_new_tokens=8, seed=0, return_logprobs=True)
        assert not torch.isin(batch.response_ids, torch.tensor(vision_ids)).any()
        # The batch can be scored (an image token in a response would break the forward).
        honest = compute_logprobs(model, batch)
        unmasked = compute_logprobs(model, batch, suppress_token_ids=())
    finally:
        handle.remove()
    mask = batch.response_mask > 0
    assert batch.suppress_token_ids == engine.suppress_token_ids
    assert (honest.logprobs - batch.rollout_logprobs).abs()[mask].max() < 1e-4
    gap = (honest.logprobs - unmasked.logprobs)[mask]
    # Ignoring the suppression spreads mass over tokens that could not be sampled: log-probs too low.
    assert gap.min() > -1e-5 and gap.mean() > 0.05


def test_truncation_and_masks(model, processor, prompts):
    engine = HFRolloutEngine(model, processor)
    eos = engine.eos_token_ids
    handle = _bias_logits(model, eos[:1], 5.0)
    try:
        batch = engine.generate(prompts, n=6, max_new_tokens=6, seed=5, batch_size=7)
    finally:
        handle.remove()
    assert batch.response_length == 6
    assert 0 < int(batch.truncated.sum()) < len(batch)  # both kinds occur
    p = batch.prompt_length
    for r in range(len(batch)):
        ids = batch.response_ids[r].tolist()
        length = int(batch.response_mask[r].sum())
        assert batch.response_mask[r, :length].eq(1).all() and batch.response_mask[r, length:].eq(0).all()
        ends = [t for t, tok in enumerate(ids) if tok in eos]
        if batch.truncated[r]:
            assert length == 6 and not ends
        else:
            assert ends and ends[0] == length - 1
        assert all(t == batch.pad_token_id for t in ids[length:])
        assert batch.attention_mask[r, p:].tolist() == batch.response_mask[r].long().tolist()
        expected_text = processor.tokenizer.decode(ids[:length], skip_special_tokens=True)
        assert batch.response_text[r] == expected_text
        assert "<|im_end|>" not in batch.response_text[r] and "<|endoftext|>" not in batch.response_text[r]


def test_rows_keys_and_prompt_layout(model, processor, prompts):
    batch = HFRolloutEngine(model, processor).generate(prompts, n=2, max_new_tokens=3, seed=0)
    assert batch.prompt_index.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert batch.keys == ["red", "red", "plain", "plain", "two", "two", "blue", "blue"]
    p = batch.prompt_length
    for r in range(len(batch)):
        prompt = prompts[int(batch.prompt_index[r])]
        expected = _single_inputs(processor, prompt)["input_ids"][0]
        real = batch.input_ids[r, :p][batch.attention_mask[r, :p].bool()]
        assert torch.equal(real, expected)  # left-padded: padding first, then exactly the prompt
        assert batch.attention_mask[r, p - 1] == 1
        assert batch.mm_token_type_ids is not None
        assert batch.mm_token_type_ids[r, p:].eq(0).all()


def test_seed_reproducible_and_global_rng_untouched(model, processor, prompts):
    engine = HFRolloutEngine(model, processor)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = engine.generate(prompts, n=2, max_new_tokens=8, seed=7, batch_size=3)
    assert torch.equal(torch.get_rng_state(), state)
    b = engine.generate(prompts, n=2, max_new_tokens=8, seed=7, batch_size=3)
    c = engine.generate(prompts, n=2, max_new_tokens=8, seed=8, batch_size=3)
    assert torch.equal(a.response_ids, b.response_ids)
    assert not torch.equal(a.response_ids, c.response_ids)


def test_bad_inputs_name_the_prompt(model, processor, prompts):
    engine = HFRolloutEngine(model, processor)
    bad = PromptInput("k-42", prompts[0].text, [])
    with pytest.raises(ValueError, match="k-42"):
        engine.generate([prompts[0], bad])
    with pytest.raises(ValueError, match="temperature"):
        engine.generate(prompts, temperature=0.0)
    with pytest.raises(ValueError, match="n must be"):
        engine.generate(prompts, n=0)

"""LoRA (peft) wrapping, frozen vision tower, merged export and adapter checkpoints of the tiny policy."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

from mssr.models import build_prompt, load_policy
from mssr.models.lora import (
    adapter_state_dict,
    adapters_disabled,
    apply_lora,
    base_model,
    freeze_vision,
    is_lora,
    load_adapter_state_dict,
    merged_state_dict,
    save_adapter,
    save_merged,
)
from mssr.rollout import HFRolloutEngine, PromptInput, compute_logprobs
from mssr.rollout.prefix import prefill

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
VISION = "model.visual."


def _image() -> Image.Image:
    img = Image.new("RGB", (64, 64), (200, 30, 30))
    img.paste((10, 200, 40), (0, 0, 32, 20))
    return img


@pytest.fixture
def policy(tiny_policy_dir):
    """A fresh float32 copy of the session's tiny policy (apply_lora injects layers in place)."""
    return load_policy(tiny_policy_dir, dtype=torch.float32)


@pytest.fixture
def prompts(policy) -> list[PromptInput]:
    proc = policy.processor
    return [
        PromptInput("img", build_prompt(proc, "What color is it?", 1, instruction=None), [_image()]),
        PromptInput("txt", build_prompt(proc, "Count the bars.", 0, instruction=None), []),
    ]


@pytest.fixture
def inputs(policy, prompts) -> dict[str, torch.Tensor]:
    p = prompts[0]
    return dict(policy.processor(text=[p.text], images=p.images, return_tensors="pt"))


def _logits(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


def _perturb(model: nn.Module, seed: int = 1, std: float = 0.05) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.add_(torch.randn(p.shape, generator=gen) * std)


def _wrap(policy, *, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return apply_lora(policy.model, rank=4, alpha=8.0, **kwargs)


@pytest.mark.parametrize("include_vision", [False, True])
def test_only_adapters_trainable(policy, include_vision):
    linears = {n: m for n, m in policy.model.named_modules() if isinstance(m, nn.Linear)}
    targeted = {
        n: m
        for n, m in linears.items()
        if n.rsplit(".", 1)[-1] in TARGETS and (include_vision or not n.startswith(VISION))
    }
    expected = sum(4 * (m.in_features + m.out_features) for m in targeted.values())
    model = _wrap(policy, include_vision=include_vision)
    assert is_lora(model) and base_model(model) is model.get_base_model()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert sum(p.numel() for p in trainable.values()) == expected
    adapted = [n for n, m in base_model(model).named_modules() if hasattr(m, "lora_A")]
    in_vision = [n for n in adapted if n.startswith(VISION)]
    assert len(adapted) == len(targeted)
    assert bool(in_vision) == include_vision  # the ViT blocks have gate/up/down_proj too
    if not include_vision:
        assert len(adapted) == 7 * policy.model.config.text_config.num_hidden_layers


def test_init_is_deterministic(policy, tiny_policy_dir):
    a = adapter_state_dict(_wrap(policy, seed=3))
    b = adapter_state_dict(_wrap(load_policy(tiny_policy_dir, dtype=torch.float32), seed=3))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fresh_adapters_exact_then_disabled_is_base(policy, inputs, tiny_policy_dir):
    base_logits = _logits(policy.model, inputs)
    model = _wrap(policy)
    assert torch.equal(_logits(model, inputs), base_logits)  # B = 0
    _perturb(model)
    assert not torch.allclose(_logits(model, inputs), base_logits, atol=1e-4)
    with adapters_disabled(model):
        assert torch.equal(_logits(model, inputs), base_logits)
    assert not torch.allclose(_logits(model, inputs), base_logits, atol=1e-4)  # re-enabled
    plain = load_policy(tiny_policy_dir, dtype=torch.float32).model
    with adapters_disabled(plain):  # no-op on a plain model
        assert torch.equal(_logits(plain, inputs), base_logits)


def test_merged_state_dict_and_save_merged(policy, inputs, prompts, tiny_policy_dir, tmp_path):
    plain_keys = set(load_policy(tiny_policy_dir, dtype=torch.float32).model.state_dict())
    model = _wrap(policy)
    _perturb(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    merged = merged_state_dict(model)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())  # nothing merged in place
    assert set(merged) == plain_keys
    q = "model.language_model.layers.0.self_attn.q_proj"
    layer = base_model(model).get_submodule(q)
    delta = layer.lora_B["default"].weight @ layer.lora_A["default"].weight * layer.scaling["default"]
    torch.testing.assert_close(merged[f"{q}.weight"], layer.base_layer.weight + delta)
    assert torch.equal(merged["lm_head.weight"], merged["model.language_model.embed_tokens.weight"])

    peft_logits = _logits(model, inputs)
    policy.model = model
    loaded = load_policy(save_merged(policy, tmp_path / "merged"), dtype=torch.float32)
    assert not is_lora(loaded.model) and loaded.info["lora_merged"] == {"rank": 4, "alpha": 8.0}
    assert loaded.model.lm_head.weight is loaded.model.model.language_model.embed_tokens.weight
    torch.testing.assert_close(_logits(loaded.model, inputs), peft_logits, atol=1e-5, rtol=0)
    out = HFRolloutEngine(loaded.model, loaded.processor).generate(prompts, max_new_tokens=4, seed=0)
    assert out.response_ids.shape[0] == 2 and out.response_mask.sum() > 0
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_adapter_state_dict_round_trip(policy, inputs, tiny_policy_dir, tmp_path):
    model = _wrap(policy)
    _perturb(model)
    expected = _logits(model, inputs)
    sd = adapter_state_dict(model)
    assert sd and all("lora_" in k for k in sd)
    fresh = _wrap(load_policy(tiny_policy_dir, dtype=torch.float32), seed=7)
    assert not torch.equal(_logits(fresh, inputs), expected)
    load_adapter_state_dict(fresh, sd)
    assert torch.equal(_logits(fresh, inputs), expected)
    saved = save_adapter(model, tmp_path / "adapter")
    assert (saved / "adapter_config.json").is_file() and (saved / "adapter_model.safetensors").is_file()


def test_engine_and_logprobs_on_peft_model(policy, prompts, tiny_policy_dir):
    base = load_policy(tiny_policy_dir, dtype=torch.float32).model
    model = _wrap(policy)
    text = prompts[1:]
    # the default engine (shared-prompt prefill) and transformers' generate, on image and text prompts
    for ps, share in ((text, True), (prompts, True), (prompts, False)):
        ref = HFRolloutEngine(base, policy.processor, share_prompts=share)
        eng = HFRolloutEngine(model, policy.processor, share_prompts=share)
        greedy = dict(greedy=True, max_new_tokens=5, return_logprobs=True)
        a, b = ref.generate(ps, **greedy), eng.generate(ps, **greedy)
        assert torch.equal(a.response_ids, b.response_ids)
        torch.testing.assert_close(b.rollout_logprobs, a.rollout_logprobs, atol=1e-6, rtol=0)
        batch = ref.generate(ps, n=2, max_new_tokens=5, seed=0)
        lp, lp_ref = (compute_logprobs(m, batch, share_prompts=share).logprobs for m in (model, base))
        torch.testing.assert_close(lp, lp_ref, atol=1e-6, rtol=0)

    _perturb(model)
    out = compute_logprobs(model, batch, requires_grad=True, share_prompts=False)
    (out.logprobs.sum()).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads and all("lora_" in n for n in grads)
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "lora_A" in n)


def test_shared_prompt_prefill_with_images_on_peft_model(policy, prompts, tiny_policy_dir):
    base = load_policy(tiny_policy_dir, dtype=torch.float32).model
    model = _wrap(policy)
    eng = HFRolloutEngine(base, policy.processor)
    ids, mm, store = eng.encode(prompts)
    inputs = eng._left_pad([0, 1], ids, mm, store, torch.device("cpu"))
    vision = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    with torch.no_grad():
        a = prefill(base, inputs["input_ids"], inputs["attention_mask"], vision, torch.arange(2))
        b = prefill(model, inputs["input_ids"], inputs["attention_mask"], vision, torch.arange(2))
    # B = 0: only rounding may differ (logits_to_keep picks a GEMM path by memory layout); wrong M-RoPE
    # positions move the logits by ~1e-2
    torch.testing.assert_close(b.last_logits, a.last_logits, atol=1e-6, rtol=0)


@pytest.mark.parametrize("wrapped", [False, True])
def test_freeze_vision(policy, wrapped):
    model = _wrap(policy, include_vision=True) if wrapped else policy.model
    hf = base_model(model)
    vision = dict(hf.model.visual.named_parameters())
    assert "merger.mlp.0.weight" in vision or "merger.mlp.0.base_layer.weight" in vision
    trainable_before = {n for n, p in model.named_parameters() if p.requires_grad}
    n = freeze_vision(model)
    assert n == sum(p.numel() for p in vision.values()) > 0
    assert all(not p.requires_grad for p in vision.values())
    language = {n for n, p in model.named_parameters() if p.requires_grad}
    assert language and not any("visual" in n for n in language)
    assert language == {n for n in trainable_before if "visual" not in n}
    if not wrapped:
        assert all(p.requires_grad for n, p in hf.named_parameters() if not n.startswith(VISION))


@pytest.mark.filterwarnings("ignore:Model has `tie_word_embeddings=True`:UserWarning")
def test_adapter_on_tied_lm_head_cannot_merge(policy):
    model = _wrap(policy, target_modules=("q_proj", "lm_head"))
    with pytest.raises(ValueError, match="tied"):
        merged_state_dict(model)

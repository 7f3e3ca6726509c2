"""`VLLMRolloutEngine` against the built-in engine and the teacher-forced pass.

The vLLM tests need vLLM: in the project venv they skip; build the CPU test environment with
``scripts/vllm_cpu_env.sh`` and run ``.venv-vllm/bin/python -m pytest tests/rollout/test_vllm_engine.py``.
The policy is mssr's tiny Qwen2.5-VL in fp32 (tied LM head), widened like the conftest's Qwen2-VL so greedy
responses are not one repeated token, on prompts of the built-in task (one image each) plus a text-only one.
"""

from __future__ import annotations

import copy

import pytest
import torch

from mssr.config import ConfigError
from mssr.models import build_prompt, build_tiny_policy
from mssr.rollout import HFRolloutEngine, PromptInput, compute_logprobs
from mssr.rollout import vllm_engine as ve
from mssr.rollout.engine import process_logits
from mssr.rollout.logprobs import response_logits

VLLM_OK, VLLM_WHY = ve.vllm_available()
needs_vllm = pytest.mark.skipif(
    not VLLM_OK,
    reason=f"vLLM cannot be imported here ({VLLM_WHY}); build the CPU test environment with "
    "scripts/vllm_cpu_env.sh and run .venv-vllm/bin/python -m pytest tests/rollout/test_vllm_engine.py",
)
MAX_MODEL_LEN = 1024


def _widen(model: torch.nn.Module) -> torch.nn.Module:
    """Scale the residual-writing projections and the vision merger (random init is near-degenerate)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "visual" not in name and name.endswith(
                ("o_proj.weight", "down_proj.weight", "v_proj.weight", "up_proj.weight")
            ):
                p.mul_(10.0)
        model.model.visual.merger.mlp[-1].weight.mul_(20.0)
    return model.eval()


@pytest.fixture(scope="module")
def tiny():
    policy = build_tiny_policy("tiny", seed=0)
    _widen(policy.model)
    assert policy.model.lm_head.weight is policy.model.get_input_embeddings().weight  # tied
    return policy


@pytest.fixture(scope="module")
def builtin_prompts(tiny, tmp_path_factory) -> list[PromptInput]:
    from mssr.data import load_records
    from mssr.data.builtin import generate_dataset
    from mssr.rollout.prompting import records_to_prompts

    paths = generate_dataset(tmp_path_factory.mktemp("builtin"), n_train=5, n_val=1, n_test=1)
    prompts = records_to_prompts(list(load_records(str(paths["train"])))[:5], tiny.processor)
    text = build_prompt(tiny.processor, "What is 2 + 3? Answer in a box.", 0)
    return [*prompts, PromptInput("text-only", text, [])]


@pytest.fixture(scope="module")
def engine(tiny):
    eng = ve.VLLMRolloutEngine(copy.deepcopy(tiny.model), tiny.processor, max_model_len=MAX_MODEL_LEN)
    yield eng
    eng.close()


def _diff(model, batch) -> float:
    ref = compute_logprobs(model, batch).logprobs
    mask = batch.response_mask > 0
    return float((ref - batch.rollout_logprobs)[mask].abs().max())


# ------------------------------------------------------------------------------------ without vLLM
def test_build_engine_hf_and_errors(tiny):
    eng = ve.build_engine("hf", tiny.model, tiny.processor)
    assert isinstance(eng, HFRolloutEngine) and eng.model is tiny.model
    with pytest.raises(ValueError, match="unknown rollout engine"):
        ve.build_engine("sglang", tiny.model, tiny.processor)
    with pytest.raises(TypeError, match="vllm engine"):
        ve.build_engine("hf", tiny.model, tiny.processor, max_model_len=64)
    if not VLLM_OK:
        with pytest.raises(ImportError, match=r"vllm_cpu_env\.sh"):
            ve.build_engine("vllm", tiny.model, tiny.processor)


def test_write_vllm_files(tiny, tmp_path):
    tiny.save(tmp_path)
    target = ve.write_vllm_files(tmp_path)  # from the saved processor config
    import json

    video = json.loads(target.read_text())
    image = tiny.processor.image_processor
    assert video["video_processor_type"] == "Qwen2VLVideoProcessor"
    assert (video["patch_size"], video["merge_size"]) == (image.patch_size, image.merge_size)


# ------------------------------------------------------------------------------------------ vLLM
@needs_vllm
def test_greedy_equals_builtin_engine(engine, tiny, builtin_prompts):
    ours = engine.generate(builtin_prompts, greedy=True, max_new_tokens=24)
    ref = HFRolloutEngine(tiny.model, tiny.processor).generate(
        builtin_prompts, greedy=True, max_new_tokens=24, return_logprobs=True
    )
    assert len({tuple(r.tolist()) for r in ref.response_ids}) > 1  # not one degenerate answer
    assert torch.equal(ours.response_ids, ref.response_ids)
    assert torch.equal(ours.input_ids, ref.input_ids) and torch.equal(ours.attention_mask, ref.attention_mask)
    assert torch.equal(ours.response_mask, ref.response_mask) and torch.equal(ours.truncated, ref.truncated)
    assert ours.response_text == ref.response_text and ours.keys == ref.keys
    assert ours.suppress_token_ids == ref.suppress_token_ids and ours.temperature == 1.0
    assert torch.equal(ours.mm_token_type_ids, ref.mm_token_type_ids)
    assert float((ours.rollout_logprobs - ref.rollout_logprobs).abs().max()) < 1e-5


@needs_vllm
def test_sampled_logprobs_equal_teacher_forced(engine, tiny, builtin_prompts):
    n = 3
    batch = engine.generate(builtin_prompts, n=n, temperature=0.7, max_new_tokens=16, seed=3)
    assert len(batch) == n * len(builtin_prompts)
    assert batch.prompt_index.tolist() == [i for i in range(len(builtin_prompts)) for _ in range(n)]
    assert batch.temperature == 0.7
    suppressed = torch.tensor(batch.suppress_token_ids)
    assert not torch.isin(batch.response_ids[batch.response_mask > 0], suppressed).any()
    group = batch.response_ids[:n]
    assert not (torch.equal(group[0], group[1]) and torch.equal(group[1], group[2]))  # n distinct streams
    diff = _diff(tiny.model, batch)
    print(f"max |vLLM log-prob - teacher-forced| (T=0.7): {diff:.2e}")
    assert diff < 1e-5
    again = engine.generate(builtin_prompts, n=n, temperature=0.7, max_new_tokens=16, seed=3)
    assert torch.equal(again.response_ids, batch.response_ids)  # seeded


@needs_vllm
def test_top_k_top_p_logprobs_are_the_processed_distribution(engine, tiny, builtin_prompts):
    batch = engine.generate(
        builtin_prompts, n=2, temperature=1.3, top_k=20, top_p=0.9, max_new_tokens=8, seed=1
    )
    with torch.no_grad():
        logits = response_logits(tiny.model, batch)
    z = process_logits(
        logits, temperature=1.3, top_k=20, top_p=0.9, suppress_token_ids=batch.suppress_token_ids
    )
    tokens = batch.response_ids[:, : logits.shape[1]]
    ref = torch.log_softmax(z, -1).gather(-1, tokens[..., None]).squeeze(-1)
    mask = batch.response_mask[:, : logits.shape[1]] > 0
    assert torch.isfinite(ref[mask]).all()  # every sampled token lies inside the top-k/top-p set
    assert float((ref - batch.rollout_logprobs[:, : logits.shape[1]])[mask].abs().max()) < 1e-5


def _adam_step(model, batch) -> None:
    """One optimizer step on a policy-gradient-like loss; Adam moves every parameter, the tied embedding too."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    (-compute_logprobs(model, batch, requires_grad=True).logprobs.sum()).backward()
    opt.step()
    model.eval()


@needs_vllm
def test_sync_after_optimizer_step(tiny, builtin_prompts):
    """fp32: after an update vLLM samples the new weights only once synced; then it agrees with the trainer's
    teacher-forced pass to < 1e-5 and equals, bitwise, an engine started afresh on the new weights."""
    trainer_model = copy.deepcopy(tiny.model)
    eng = ve.VLLMRolloutEngine(trainer_model, tiny.processor, max_model_len=MAX_MODEL_LEN)
    try:
        batch = eng.generate(builtin_prompts, n=2, temperature=1.0, max_new_tokens=12, seed=0)
        assert _diff(trainer_model, batch) < 1e-5
        _adam_step(trainer_model, batch)
        stale = eng.generate(builtin_prompts, n=2, temperature=1.0, max_new_tokens=12, seed=1)
        stale_diff = _diff(trainer_model, stale)
        assert stale_diff > 1e-2  # no sync: vLLM still samples the old weights

        seconds = eng.sync_weights(trainer_model)
        assert 0 < seconds == eng.last_sync_s and eng.tied_heads_refreshed == 1
        fresh = eng.generate(builtin_prompts, n=2, temperature=1.0, max_new_tokens=12, seed=1)
        diff = _diff(trainer_model, fresh)
        print(f"fp32 after an Adam step: unsynced {stale_diff:.2e}, synced ({seconds:.3f} s) {diff:.2e}")
        assert diff < 1e-5
    finally:
        eng.close()
    # the synced engine is bitwise a fresh engine started on the new weights (tied LM head included)
    restarted = ve.VLLMRolloutEngine(trainer_model, tiny.processor, max_model_len=MAX_MODEL_LEN)
    try:
        again = restarted.generate(builtin_prompts, n=2, temperature=1.0, max_new_tokens=12, seed=1)
    finally:
        restarted.close()
    assert torch.equal(again.response_ids, fresh.response_ids)
    assert torch.equal(again.rollout_logprobs, fresh.rollout_logprobs)


@needs_vllm
def test_sync_lora_merged(tiny, builtin_prompts):
    from mssr.models.lora import apply_lora

    peft_model = apply_lora(copy.deepcopy(tiny.model), rank=4, alpha=8)
    with torch.no_grad():  # non-zero adapters (B starts at 0)
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    eng = ve.VLLMRolloutEngine(peft_model, tiny.processor, max_model_len=MAX_MODEL_LEN)
    try:
        batch = eng.generate(builtin_prompts[-2:], n=2, max_new_tokens=8, seed=0)
        assert _diff(peft_model, batch) < 1e-5
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_A" in name:
                    p.mul_(-1.5)
        eng.sync_weights()
        batch = eng.generate(builtin_prompts[-2:], n=2, max_new_tokens=8, seed=0)
        assert _diff(peft_model, batch) < 1e-5
    finally:
        eng.close()


# ------------------------------------------------------------------------------------ other families
# Tiny policies of the other families (mssr.models.families), saved with Policy.save and loaded by vLLM as
# they are. Gemma 3 is refused before vLLM starts (see test_gemma3_is_refused_in_one_line).
VLLM_FAMILIES = ("qwen3_vl", "qwen3_vl_moe", "idefics3")


def _widen_family(model: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "vis" not in name and name.endswith(
                ("o_proj.weight", "down_proj.weight", "v_proj.weight", "up_proj.weight")
            ):
                p.mul_(10.0)
    return model.eval()


def _family_prompts(name, processor) -> list[PromptInput]:
    from PIL import Image

    images = [Image.new("RGB", (64, 64), c) for c in ("red", "blue", "green")]
    questions = ["What color is it?", "Which shape?", "Count the objects."]
    prompts = [
        PromptInput(f"q{i}", build_prompt(processor, q, 1, None), [images[i]])
        for i, q in enumerate(questions)
    ]
    prompts.append(PromptInput("t", build_prompt(processor, "No image: what is 2+3?", 0, None), []))
    if name.startswith("qwen3_vl"):  # a Thinking template's prompt ends in an opened "<think>\n"
        messages = [{"role": "user", "content": [{"type": "text", "text": "What is 2+3?"}]}]
        thinking = processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=True
        )
        assert thinking.endswith("<think>\n")
        prompts.append(PromptInput("think", thinking, []))
    return prompts


@pytest.fixture(scope="module", params=VLLM_FAMILIES)
def family_engine(request, tmp_path_factory):
    from mssr.data.builtin import corpus_texts

    name = request.param
    policy = build_tiny_policy(f"{name}-tiny", tokenizer_corpus=list(corpus_texts(300)), seed=0)
    _widen_family(policy.model)
    path = tmp_path_factory.mktemp(f"vllm-{name}")
    policy.save(path)
    eng = ve.VLLMRolloutEngine(
        copy.deepcopy(policy.model), policy.processor, policy_dir=path, max_model_len=512
    )
    yield name, policy, eng
    eng.close()


@needs_vllm
def test_family_greedy_equals_builtin_and_logprobs_teacher_forced(family_engine):
    name, policy, eng = family_engine
    prompts = _family_prompts(name, policy.processor)
    ours = eng.generate(prompts, greedy=True, max_new_tokens=16)
    ref = HFRolloutEngine(policy.model, policy.processor).generate(
        prompts, greedy=True, max_new_tokens=16, return_logprobs=True
    )
    assert len({tuple(r.tolist()) for r in ref.response_ids}) > 1
    assert torch.equal(ours.response_ids, ref.response_ids) and torch.equal(ours.input_ids, ref.input_ids)
    assert ours.response_text == ref.response_text
    if name.startswith(
        "qwen3_vl"
    ):  # the opened think block is put back in front, as the built-in engine does
        assert ours.response_text[-1].startswith("<think>\n")
    assert float((ours.rollout_logprobs - ref.rollout_logprobs).abs().max()) < 1e-5
    batch = eng.generate(prompts, n=2, temperature=0.7, max_new_tokens=12, seed=3)
    diff = _diff(policy.model, batch)
    print(f"{name}: max |vLLM log-prob - teacher-forced| (T=0.7): {diff:.2e}")
    assert diff < 1e-5


@needs_vllm
def test_family_sync_weights(family_engine):
    """Streaming the weights in again (what the trainer does after each update) leaves the samples and their
    log-probs as they were. Qwen3-VL MoE on vLLM-CPU 0.32 is refused in one line: the in-place reload of the
    fused experts fails for the tiny preset (the CPU kernel pads the intermediate size 176 to 192: 384 packed
    rows vs 352 reloaded), and with a 32-aligned size (tried: 192) it runs but leaves log-probs off by 2.3e-3.
    Not measured on GPUs."""
    name, policy, eng = family_engine
    if name == "qwen3_vl_moe":
        with pytest.raises(
            ConfigError, match=r"^rollout\.engine=vllm: vLLM-CPU cannot update a qwen3_vl_moe"
        ):
            eng.sync_weights(policy.model)
        return
    prompts = _family_prompts(name, policy.processor)
    batch = eng.generate(prompts, n=2, temperature=0.7, max_new_tokens=12, seed=5)
    eng.sync_weights(policy.model)
    again = eng.generate(prompts, n=2, temperature=0.7, max_new_tokens=12, seed=5)
    assert torch.equal(again.response_ids, batch.response_ids) and _diff(policy.model, again) < 1e-5


def test_gemma3_is_refused_in_one_line():
    """vLLM's Gemma 3 processor needs Gemma's newline tokens; the tiny byte-level tokenizer has none, so the
    engine refuses before starting vLLM (no vLLM needed to check)."""
    from mssr.data.builtin import corpus_texts

    policy = build_tiny_policy("gemma3-tiny", tokenizer_corpus=list(corpus_texts(50)), seed=0)
    with pytest.raises(
        ConfigError, match=r"^rollout\.engine=vllm cannot serve this gemma3 policy: .*newline"
    ) as e:
        ve.VLLMRolloutEngine(policy.model, policy.processor)
    assert "\n" not in str(e.value)

"""Model families besides the tiny Qwen2.5-VL: Qwen3-VL (first-class, M-RoPE), Gemma 3 and Idefics3 (generic path).

Per family, built offline from a tiny preset: the processor and chat template; then ``mssr train`` for 2 steps →
the checkpoint's policy → ``load_policy`` → the engine's greedy output (shared-prompt KV cache, its own decoding
loop) equals transformers' ``generate``, and its sampler's log-probs equal a teacher-forced forward.
"""

from __future__ import annotations

import json
import math
import subprocess

import pytest
import torch
from PIL import Image
from tests.trainer.launch import torchrun_cmd, worker_env

from mssr.cli.main import main
from mssr.data.builtin import corpus_texts
from mssr.models import build_prompt, build_tiny_policy, load_policy
from mssr.models.families import FAMILIES
from mssr.rollout import HFRolloutEngine, PromptInput, compute_logprobs
from mssr.rollout.engine import default_suppress_token_ids

FAMILY_NAMES = ("qwen3_vl", "qwen3_vl_moe", "gemma3", "idefics3")
# the placeholder a prompt holds per image, and the token the processor repeats for it
PLACEHOLDER = {
    "qwen3_vl": ("<|vision_start|><|image_pad|><|vision_end|>", "<|image_pad|>"),
    "qwen3_vl_moe": ("<|vision_start|><|image_pad|><|vision_end|>", "<|image_pad|>"),
    "gemma3": ("<start_of_image>", "<image_soft_token>"),
    "idefics3": ("<image>", "<image>"),
}
GENERATION_PROMPT = {
    "qwen3_vl": "<|im_start|>assistant\n",
    "qwen3_vl_moe": "<|im_start|>assistant\n",
    "gemma3": "<start_of_turn>model\n",
    "idefics3": "Assistant:",
}


@pytest.fixture(scope="module", params=FAMILY_NAMES)
def family_policy(request, tmp_path_factory):
    name = request.param
    policy = build_tiny_policy(f"{name}-tiny", tokenizer_corpus=list(corpus_texts(300)), seed=0)
    path = tmp_path_factory.mktemp(name)
    policy.save(path)
    return name, policy, path


def _images():
    return [Image.new("RGB", (64, 64), c) for c in ("red", "blue", "green")]


def _prompts(processor):
    images = _images()
    prompts = []
    for i, question in enumerate(["What color is it?", "Which shape?", "Count the objects."]):
        text = build_prompt(processor, question, 1, None)
        plain = build_prompt(processor, question, 0, None)
        prompts.append(PromptInput(f"q{i}", text, [images[i]], plain))
    text = build_prompt(processor, "No image: what is 2+3?", 0, None)
    prompts.append(PromptInput("t", text, [], text))
    return prompts


def test_processor_and_chat_template(family_policy):
    name, policy, _ = family_policy
    proc = policy.processor
    slot, token = PLACEHOLDER[name]
    text = build_prompt(proc, "What color?", 1)
    assert text.count(slot) == 1 and text.endswith(GENERATION_PROMPT[name])
    assert "What color?" in text and "\\boxed{}" in text  # question, then the instruction
    with_system = build_prompt(proc, "What color?", 1, None, system_prompt="Be brief.")
    assert "Be brief." in with_system and with_system.count(slot) == 1
    assert build_prompt(proc, "What color?", 0).count(slot) == 0
    enc = proc(
        text=[text],
        images=[[_images()[0]]] if not name.startswith("qwen") else [_images()[0]],
        return_tensors="pt",
    )
    image_token_id = policy.tokenizer.convert_tokens_to_ids(token)
    assert int((enc["input_ids"] == image_token_id).sum()) == 16  # 64 px / patch 8 / merge 2, squared
    # the vision tokens are never sampled, and generation stops at the family's end of turn
    suppressed = set(default_suppress_token_ids(policy.model, proc))
    assert image_token_id in suppressed
    assert set(policy.vision_token_ids()) == suppressed
    eos = policy.model.generation_config.eos_token_id
    assert policy.tokenizer.convert_tokens_to_ids(FAMILIES[name].eos_token) in eos
    assert policy.info["family"] == name
    ids = policy.special_token_ids()
    assert list(ids) == list(FAMILIES[name].special_tokens) and sorted(ids.values()) == list(range(len(ids)))


def _train_args(policy_dir, data_dir, run) -> list[str]:
    """`mssr train` overrides: 2 steps of 8 rollouts, 8 new tokens, a checkpoint at step 2."""
    return [
        f"model.path={policy_dir}",
        f"data.train={data_dir}",
        f"output_dir={run}",
        "reward.spec=format",
        "steps=2",
        "device=cpu",
        "threads=1",
        "rollout.rollouts_per_step=8",
        "rollout.max_new_tokens=8",
        "rollout.gen_batch_size=8",
        "optim.mini_batch_prompts=4",
        "optim.micro_batch_size=4",
        "optim.lr=1e-3",
        "val.every=2",  # the shared evaluator at the end: 4 validation items
        "val.at_start=false",
        "checkpoint.every=2",
        "logging.progress=false",
        "logging.tensorboard=false",
        "logging.plot=false",
    ]


def _check_run(run) -> None:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    steps = [r for r in rows if "train/rollouts" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["train/rollouts"] > 0 for r in steps)
    for r in steps:
        assert all(math.isfinite(v) for v in r.values() if isinstance(v, float))
    assert [r["step"] for r in rows if "val/accuracy" in r] == [2]
    assert (run / "checkpoints" / "step_000002" / "policy" / "config.json").is_file()


def test_train_checkpoint_reload_greedy_equals_generate(family_policy, tiny_data_dir, tmp_path):
    name, _, policy_dir = family_policy
    run = tmp_path / "run"
    assert main(["train", *_train_args(policy_dir, tiny_data_dir, run)]) == 0
    _check_run(run)

    policy = load_policy(run / "checkpoints" / "step_000002" / "policy")
    assert type(policy.model).__name__.lower().startswith(name.replace("_", ""))
    model, proc = policy.model, policy.processor
    prompts = _prompts(proc)
    engine = HFRolloutEngine(model, proc)
    ours = engine.generate(prompts, n=2, greedy=True, max_new_tokens=12)
    ref = HFRolloutEngine(model, proc, share_prompts=False).generate(
        prompts, n=2, greedy=True, max_new_tokens=12
    )
    assert torch.equal(ours.response_ids, ref.response_ids)
    assert ours.response_text == ref.response_text
    # transformers' generate on one prompt, called directly, agrees too
    one = proc(
        text=[prompts[0].text],
        images=[prompts[0].images] if not name.startswith("qwen") else prompts[0].images,
        return_tensors="pt",
    )
    one = dict(one)
    out = model.generate(
        **one,
        do_sample=False,
        max_new_tokens=12,
        suppress_tokens=list(engine.suppress_token_ids),
        eos_token_id=engine.eos_token_ids,
        pad_token_id=engine.pad_token_id,
    )
    direct = out[0, one["input_ids"].shape[1] :].tolist()
    mine = ours.response_ids[0, : int(ours.response_mask[0].sum())].tolist()
    assert direct[: len(mine)] == mine
    # a barely trained tiny model often repeats one token greedily; sharpened (weights ×3) its greedy responses
    # vary within a row, so the comparison covers many decoding steps of the shared cache
    with torch.no_grad():
        for n, w in model.named_parameters():
            if w.dim() >= 2 and "embed" not in n:
                w.mul_(3.0)
    sharp = engine.generate(prompts, n=2, greedy=True, max_new_tokens=12)
    sharp_ref = HFRolloutEngine(model, proc, share_prompts=False).generate(
        prompts, n=2, greedy=True, max_new_tokens=12
    )
    assert torch.equal(sharp.response_ids, sharp_ref.response_ids)
    assert max(len(set(r)) for r in sharp.response_ids.tolist()) > 1
    # sampled with a shared prompt cache: the sampler's log-probs equal teacher forcing, both paths
    sampled = engine.generate(prompts, n=2, max_new_tokens=8, seed=3, return_logprobs=True, batch_size=4)
    shared = compute_logprobs(model, sampled).logprobs
    full = compute_logprobs(model, sampled, share_prompts=False).logprobs
    assert torch.allclose(shared, sampled.rollout_logprobs, atol=1e-4)
    assert torch.allclose(full, shared, atol=1e-4)


def test_open_think_in_the_prompt_is_put_back_in_front_of_the_response():
    # a Qwen3 "Thinking" template ends its generation prompt with "<think>\n": the response starts inside the
    # block, and the format reward reads "<think>…</think>…", so the opening is restored in the response text
    policy = build_tiny_policy("qwen3_vl-tiny", tokenizer_corpus=list(corpus_texts(50)), seed=1)
    proc = policy.processor
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is 2+3?"}]}]
    thinking = proc.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=True
    )
    plain = proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert thinking.endswith("<|im_start|>assistant\n<think>\n") and not plain.endswith("<think>\n")
    engine = HFRolloutEngine(policy.model, proc)
    batch = engine.generate(
        [PromptInput("a", thinking), PromptInput("b", plain)], greedy=True, max_new_tokens=4
    )
    decoded = [
        policy.tokenizer.decode(r[m > 0].tolist(), skip_special_tokens=True)
        for r, m in zip(batch.response_ids, batch.response_mask)
    ]
    assert batch.response_text == ["<think>\n" + decoded[0], decoded[1]]


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_family_presets_in_configs_and_plans(name):
    from mssr.config import load_config
    from mssr.models.presets import PRESETS
    from mssr.models.shapes import build_meta_model, preset_config
    from mssr.trainer.config import TrainConfig

    preset = f"{name}-tiny"
    assert PRESETS[preset].family == name
    cfg = load_config(TrainConfig, None, [f"model.preset={preset}", "model.warm_start=false"])
    assert cfg.model.preset == preset
    config = preset_config(preset)
    assert config.model_type == name
    meta = build_meta_model(config)
    assert 0.5e6 < sum(p.numel() for p in meta.parameters()) < 3e6


def test_idefics3_image_tiles_ride_the_nested_layout():
    # SmolVLM-style image splitting: a 128×96 image becomes 2×2 tiles + the global view (5 rows of pixels), two
    # images 10, no image 0; prompts without text_without_images get it by deleting the <image> placeholders
    policy = build_tiny_policy("idefics3-tiny", tokenizer_corpus=list(corpus_texts(50)), seed=2)
    model, proc = policy.model, policy.processor
    proc.image_processor.do_image_splitting = True
    proc.image_processor.size = {"longest_edge": 128}
    red, blue, green = (
        Image.new("RGB", size, c)
        for size, c in [((128, 96), "red"), ((64, 64), "blue"), ((96, 128), "green")]
    )
    prompts = [
        PromptInput("a", build_prompt(proc, "One?", 1, None), [red]),
        PromptInput("b", build_prompt(proc, "Two?", 2, None), [blue, green]),
        PromptInput("c", build_prompt(proc, "None?", 0, None), []),
    ]
    engine = HFRolloutEngine(model, proc)
    ours = engine.generate(prompts, n=2, greedy=True, max_new_tokens=8)
    assert ours.prompts.pixel_layout == "nested" and ours.prompts.slot_units.tolist() == [5, 10, 0]
    no_images = engine.generate(prompts[2:], greedy=True, max_new_tokens=2)  # same layout without any image
    assert no_images.prompts.pixel_layout == "nested" and no_images.prompts.slot_units.tolist() == [0]
    ref = HFRolloutEngine(model, proc, share_prompts=False).generate(
        prompts, n=2, greedy=True, max_new_tokens=8
    )
    assert torch.equal(ours.response_ids, ref.response_ids)
    sampled = engine.generate(prompts, n=2, max_new_tokens=8, seed=2, return_logprobs=True, batch_size=2)
    shared = compute_logprobs(model, sampled).logprobs
    assert torch.allclose(shared, sampled.rollout_logprobs, atol=1e-4)
    assert torch.allclose(compute_logprobs(model, sampled.select([5, 0])).logprobs, shared[[5, 0]], atol=1e-5)
    text_only = sampled.text_only()
    assert "<image>" not in policy.tokenizer.decode(text_only.input_ids[0])
    assert text_only.prompts.pixel_values is None
    compute_logprobs(model, text_only)  # runs without images


def test_gemma3_batches_concatenate_and_score_like_their_parts():
    # the "images" layout through concat_batches (evaluation's seeded chunks): rows keep their own images and
    # token types, so scoring the concatenation equals scoring each part
    from mssr.rollout.concat import concat_batches

    policy = build_tiny_policy("gemma3-tiny", tokenizer_corpus=list(corpus_texts(50)), seed=3)
    model, proc = policy.model, policy.processor
    prompts = _prompts(proc)
    engine = HFRolloutEngine(model, proc)
    first = engine.generate(prompts[:2], n=2, max_new_tokens=6, seed=1)
    second = engine.generate(prompts[2:], n=2, max_new_tokens=6, seed=2)
    assert first.token_types_key == "token_type_ids" and first.prompts.pixel_layout == "images"
    both = concat_batches([first, second])
    assert both.prompts.slot_units.tolist() == [1, 1, 1, 0]
    parts = [compute_logprobs(model, b).logprobs for b in (first, second)]
    whole = compute_logprobs(model, both).logprobs
    t = whole.shape[1]
    expected = torch.cat([torch.nn.functional.pad(p, (0, t - p.shape[1])) for p in parts])
    assert torch.allclose(whole, expected, atol=1e-5)


def test_prompt_ids_hold_the_templates_bos_once():
    # a real Gemma tokenizer adds <bos> itself; the chat template already wrote it, so the engine tokenizes
    # other families' prompts without added special tokens
    from tokenizers import processors

    policy = build_tiny_policy("gemma3-tiny", tokenizer_corpus=list(corpus_texts(50)), seed=4)
    tok, proc = policy.tokenizer, policy.processor
    bos = tok.bos_token_id
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", bos)]
    )
    assert tok("hi")["input_ids"][0] == bos
    text = build_prompt(proc, "What?", 1, None)
    prompt = PromptInput("a", text, [Image.new("RGB", (64, 64))], build_prompt(proc, "What?", 0, None))
    batch = HFRolloutEngine(policy.model, proc).generate([prompt], greedy=True, max_new_tokens=2)
    ids = batch.input_ids[0][batch.attention_mask[0].bool()].tolist()
    assert ids[0] == bos and ids.count(bos) == 1
    assert batch.prompts.text_only_ids[0].tolist().count(bos) == 1


@pytest.mark.slow
def test_lora_and_fsdp_train_two_steps(family_policy, tiny_data_dir, tmp_path):
    # LoRA (in process) and FSDP2 (torchrun, 2 gloo processes): 2 steps each, finite metrics, a loadable checkpoint
    _, _, policy_dir = family_policy
    lora = tmp_path / "lora"
    assert (
        main(
            [
                "train",
                *_train_args(policy_dir, tiny_data_dir, lora),
                "model.lora_rank=4",
                "model.lora_alpha=8",
            ]
        )
        == 0
    )
    _check_run(lora)
    load_policy(lora / "checkpoints" / "step_000002" / "policy")
    fsdp = tmp_path / "fsdp"
    cmd = torchrun_cmd([*_train_args(policy_dir, tiny_data_dir, fsdp), "parallel.strategy=fsdp"])
    done = subprocess.run(cmd, env=worker_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_run(fsdp)
    load_policy(fsdp / "checkpoints" / "step_000002" / "policy")


@pytest.mark.parametrize("name", ["gemma3", "idefics3"])
def test_freeze_vision_also_freezes_the_projector(name):
    from mssr.models import freeze_vision

    policy = build_tiny_policy(f"{name}-tiny", tokenizer_corpus=list(corpus_texts(50)), seed=5)
    hf = policy.model
    tower, projector = {
        "gemma3": ("vision_tower", "multi_modal_projector"),
        "idefics3": ("vision_model", "connector"),
    }[name]
    frozen = [p for n, p in hf.named_parameters() if n.startswith((f"model.{tower}.", f"model.{projector}."))]
    assert freeze_vision(hf) == sum(p.numel() for p in frozen) > 0
    assert not any(p.requires_grad for p in frozen)
    language = [n for n, p in hf.named_parameters() if p.requires_grad]
    assert language and all(
        n.startswith(("model.language_model.", "model.text_model.", "lm_head.")) for n in language
    )


def test_qwen3_vl_directory_looks_stock_and_loads_without_torchvision(tmp_path):
    # saved as a stock Qwen3-VL directory (processor_class Qwen3VLProcessor); a hub checkpoint's video processor
    # config is ignored by the image-only processor, which needs no torchvision
    path = tmp_path / "q3"
    build_tiny_policy("qwen3_vl-tiny", tokenizer_corpus=list(corpus_texts(50)), seed=6).save(path)
    assert json.loads((path / "processor_config.json").read_text())["processor_class"] == "Qwen3VLProcessor"
    (path / "video_preprocessor_config.json").write_text(
        json.dumps({"video_processor_type": "Qwen3VLVideoProcessor", "patch_size": 8, "merge_size": 2})
    )
    policy = load_policy(path)
    assert type(policy.processor).__name__ == "Qwen3VLImageOnlyProcessor"
    assert getattr(policy.processor, "video_processor", None) is None
    assert policy.info["family"] == "qwen3_vl"

"""Tiny policy: sizes, image-token accounting, determinism, save → offline reload → generate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from PIL import Image

from mssr.models import PRESETS, build_prompt, build_tiny_policy, load_policy
from mssr.models.presets import make_config

CORPUS = ["How many red circles are there? <think>3 red circles.</think> \\boxed{3}"] * 5


@pytest.fixture(scope="module")
def policy():
    return build_tiny_policy("tiny", tokenizer_corpus=CORPUS, seed=0)


def _image(w: int = 64, h: int = 64, colour=(200, 20, 20)) -> Image.Image:
    img = Image.new("RGB", (w, h), (255, 255, 255))
    img.paste(colour, (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    return img


@pytest.mark.parametrize(
    ("name", "low", "high"), [("tiny", 0.8e6, 1.3e6), ("small", 4e6, 6e6), ("base", 16e6, 24e6)]
)
def test_preset_parameter_counts(name, low, high):
    ids = {
        t: i
        for i, t in enumerate(
            [
                "<|endoftext|>",
                "<|im_start|>",
                "<|im_end|>",
                "<|vision_start|>",
                "<|vision_end|>",
                "<|image_pad|>",
                "<|video_pad|>",
            ]
        )
    }
    preset = PRESETS[name]
    config = make_config(preset, token_ids=ids, vocab_size=preset.vocab_size)
    assert sum(config.text_config.rope_parameters["mrope_section"]) == preset.head_dim // 2
    assert config.vision_config.out_hidden_size == config.text_config.hidden_size
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    n = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert low <= n <= high, n


@pytest.mark.parametrize(("w", "h", "tokens"), [(64, 64, 16), (96, 96, 36), (128, 64, 32)])
def test_image_token_count_matches_grid(w, h, tokens):
    pol = build_tiny_policy("tiny", tokenizer_corpus=CORPUS, image_size=64, max_pixels=128 * 128)
    prompt = build_prompt(pol.processor, "What colour?", 1)
    assert prompt.count("<|image_pad|>") == 1
    batch = pol.processor(text=[prompt], images=[_image(w, h)], return_tensors="pt")
    t, gh, gw = batch["image_grid_thw"][0].tolist()
    assert (t, gh, gw) == (1, h // 8, w // 8)  # patch 8, no resize inside [min, max] pixels
    image_id = pol.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((batch["input_ids"] == image_id).sum()) == tokens == gh * gw // 4
    assert batch["pixel_values"].shape == (gh * gw, 3 * 2 * 8 * 8)
    assert int(batch["mm_token_type_ids"].sum()) == tokens


def test_pixel_range_resizes(policy):
    # default min = max = 64*64: a 128x128 image is brought down to 64x64 -> 16 tokens
    batch = policy.processor(text=[build_prompt(policy.processor, "q", 1)], images=[_image(128, 128)])
    assert batch["image_grid_thw"][0].tolist() == [1, 8, 8]


def test_build_is_deterministic_and_seeded():
    a = build_tiny_policy("tiny", tokenizer_corpus=CORPUS, seed=3).model.state_dict()
    b = build_tiny_policy("tiny", tokenizer_corpus=CORPUS, seed=3).model.state_dict()
    c = build_tiny_policy("tiny", tokenizer_corpus=CORPUS, seed=4).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_generation_config_stops_at_im_end(policy):
    gc = policy.model.generation_config
    assert policy.tokenizer.convert_tokens_to_ids("<|im_end|>") in gc.eos_token_id
    assert gc.top_k == 0 and gc.top_p == 1.0 and gc.temperature == 1.0


def test_save_reload_offline_in_fresh_process(policy, tmp_path):
    path = policy.save(tmp_path / "pol")
    # the video processor config vLLM's Qwen-VL processor insists on, derived from the image processor
    video = json.loads((path / "video_preprocessor_config.json").read_text())
    image = policy.processor.image_processor
    assert video["video_processor_type"] == "Qwen2VLVideoProcessor"
    assert (video["patch_size"], video["merge_size"]) == (image.patch_size, image.merge_size)
    img_path = tmp_path / "img.png"
    _image().save(img_path)
    prompt = build_prompt(policy.processor, "How many red circles are there?", 1)
    batch = policy.processor(text=[prompt], images=[_image()], return_tensors="pt")
    with torch.no_grad():
        ref = policy.model(**batch).logits[0, -1]
    script = textwrap.dedent(
        f"""
        import json, sys, torch
        from PIL import Image
        from mssr.models import build_prompt, load_policy
        pol = load_policy({str(path)!r})
        prompt = build_prompt(pol.processor, "How many red circles are there?", 1)
        batch = pol.processor(text=[prompt], images=[Image.open({str(img_path)!r})], return_tensors="pt")
        with torch.no_grad():
            logits = pol.model(**batch).logits[0, -1]
            torch.manual_seed(0)
            out = pol.model.generate(**batch, max_new_tokens=12, do_sample=True, top_k=0, top_p=1.0)
        new = out[0, batch["input_ids"].shape[1]:]
        json.dump({{"logits": logits.tolist(), "n_new": int(new.numel()),
                   "text": pol.tokenizer.decode(new, skip_special_tokens=False),
                   "processor": type(pol.processor).__name__, "info": pol.info}}, sys.stdout)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert torch.allclose(torch.tensor(out["logits"]), ref, atol=1e-5)
    assert 1 <= out["n_new"] <= 12
    assert out["processor"] == "Qwen2_5_VLImageOnlyProcessor"
    assert out["info"]["preset"] == "tiny"


def test_load_policy_errors_clearly(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_policy(tmp_path / "empty")


def test_saved_dir_looks_like_a_stock_qwen_checkpoint(policy, tmp_path):
    path = policy.save(tmp_path / "pol")
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["model_type"] == "qwen2_5_vl"
    assert (
        json.loads((path / "processor_config.json").read_text())["processor_class"] == "Qwen2_5_VLProcessor"
    )
    assert (path / "chat_template.jinja").is_file()

"""`mssr plan` for every family's tiny preset: image tokens as the family's processor makes them, parameter
counts (vision tower + projector) as the real model's; Idefics3 tiling and Gemma 3 pan-and-scan rules."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from mssr.cli.main import main
from mssr.config import ConfigError, load_config
from mssr.data.builtin import corpus_texts
from mssr.models import build_prompt, build_tiny_policy
from mssr.trainer.config import TrainConfig
from mssr.trainer.memory import model_shape, plan_memory

FAMILIES = ("qwen3_vl", "qwen3_vl_moe", "gemma3", "idefics3")
VISION_PARTS = ("visual", "vision_tower", "multi_modal_projector", "vision_model", "connector")


def _cfg(*overrides: str) -> TrainConfig:
    return load_config(TrainConfig, None, ["model.warm_start=false", *overrides])


@pytest.mark.parametrize("name", FAMILIES)
def test_plan_counts_the_familys_image_tokens_and_parameters(name):
    policy = build_tiny_policy(f"{name}-tiny", tokenizer_corpus=list(corpus_texts(50)), seed=0)
    cfg = _cfg(f"model.preset={name}-tiny")
    plan = plan_memory(cfg, devices=1, alternatives=False)
    # the image tokens one 64x64 image becomes in a prompt, as the family's processor expands it
    text = build_prompt(policy.processor, "What is it?", 1, None)
    enc = policy.processor(text=[text], images=[Image.new("RGB", (64, 64), "red")], return_tensors="pt")
    image_id = policy.model.config.image_token_id
    assert plan.image_tokens == int((enc["input_ids"] == image_id).sum()) == 16
    # parameters: the real model's (but its vocabulary), its vision tower and projector as "vision"
    real = policy.model
    vision = sum(p.numel() for n, p in real.named_parameters() if set(n.split(".")) & set(VISION_PARTS))
    embed = real.get_input_embeddings().weight  # tied LM head; the preset's vocabulary is 1024, this one less
    plan_embed = 1024 * embed.shape[1]
    assert plan.params.total - plan_embed == sum(p.numel() for p in real.parameters()) - embed.numel()
    assert plan.params.vision == vision > 0
    shape, _ = model_shape(cfg)
    assert (
        shape.v_blocks == real.config.vision_config.num_hidden_layers
        if name in ("gemma3", "idefics3")
        else True
    )


def _model_dir(tmp_path, name, pre: dict) -> str:
    from mssr.models.shapes import preset_config

    config = preset_config(f"{name}-tiny")
    config.save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(pre))
    return str(tmp_path)


def test_idefics3_tiles_and_gemma3_pan_and_scan(tmp_path):
    # Idefics3 / SmolVLM: an image resized to longest edge 160 splits into ceil(160/64)^2 = 9 tiles + 1 global,
    # 16 tokens each; without splitting one tile
    path = _model_dir(tmp_path / "i", "idefics3", {"do_image_splitting": True, "size": {"longest_edge": 160}})
    assert plan_memory(_cfg(f"model.path={path}"), devices=1, alternatives=False).image_tokens == 160
    path = _model_dir(tmp_path / "j", "idefics3", {"do_image_splitting": False})
    assert plan_memory(_cfg(f"model.path={path}"), devices=1, alternatives=False).image_tokens == 16
    # Gemma 3: a fixed count whatever the size; pan-and-scan crops are not modelled: refused in one line
    path = _model_dir(tmp_path / "g", "gemma3", {"do_pan_and_scan": False})
    assert plan_memory(_cfg(f"model.path={path}"), devices=1, alternatives=False).image_tokens == 16
    path = _model_dir(tmp_path / "h", "gemma3", {"do_pan_and_scan": True})
    with pytest.raises(ConfigError, match="pan-and-scan"):
        plan_memory(_cfg(f"model.path={path}"), devices=1, alternatives=False)


@pytest.mark.parametrize("name", ["gemma3", "idefics3"])
def test_mssr_plan_cli_runs_for_non_qwen_presets(name, capsys):
    code = main(["plan", "configs/cpu/mssr.yaml", f"model.preset={name}-tiny", "model.warm_start=false"])
    out = capsys.readouterr().out
    assert code == 0 and f"preset:{name}-tiny" in out and "16 image" in out

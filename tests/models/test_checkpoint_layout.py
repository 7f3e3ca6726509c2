"""load_policy on directories laid out like the hub's Qwen2-VL / Qwen2.5-VL checkpoints (no network).

Real checkpoints differ from what mssr saves: a flat ``config.json`` (text settings at the top level),
``preprocessor_config.json`` instead of ``processor_config.json``, ``chat_template.json``, and a
``Qwen2Tokenizer`` with ``vocab.json`` + ``merges.txt``. These tests write such directories from tiny
models, so the "real checkpoint" branch of load_policy is exercised without downloading anything.
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from mssr.models import build_prompt, build_tiny_policy, load_policy
from mssr.models.processor import Qwen2_5_VLImageOnlyProcessor, Qwen2VLImageOnlyProcessor


def _hub_layout(policy, path, model_type: str) -> None:
    """Write ``policy`` the way the hub's Instruct checkpoints are laid out."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    model = policy.model
    if model_type == "qwen2_vl":
        src = model.config
        text = src.text_config.to_dict()
        vision = src.vision_config
        cfg = Qwen2VLConfig(
            text_config={
                k: text[k]
                for k in (
                    "vocab_size",
                    "hidden_size",
                    "intermediate_size",
                    "num_hidden_layers",
                    "num_attention_heads",
                    "num_key_value_heads",
                    "rope_parameters",
                    "eos_token_id",
                    "pad_token_id",
                )
            },
            vision_config={
                "depth": vision.depth,
                "embed_dim": vision.hidden_size,
                "hidden_size": src.text_config.hidden_size,
                "num_heads": vision.num_heads,
                "mlp_ratio": 2,
                "patch_size": vision.patch_size,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
            },
            image_token_id=src.image_token_id,
            video_token_id=src.video_token_id,
            vision_start_token_id=src.vision_start_token_id,
            vision_end_token_id=src.vision_end_token_id,
            tie_word_embeddings=True,
        )
        torch.manual_seed(0)
        model = Qwen2VLForConditionalGeneration(cfg)
    model.save_pretrained(path)
    # flatten config.json the way hub checkpoints store it
    cfg = json.loads((path / "config.json").read_text())
    text = cfg.pop("text_config")
    text.pop("model_type", None)
    cfg.update({k: v for k, v in text.items() if k not in cfg})
    (path / "config.json").write_text(json.dumps(cfg, indent=2))

    tok = policy.tokenizer
    vocab = tok.get_vocab()
    backend = json.loads(tok.backend_tokenizer.to_str())
    merges = backend["model"]["merges"]
    (path / "vocab.json").write_text(
        json.dumps({k: v for k, v in vocab.items() if v < len(backend["model"]["vocab"])})
    )
    (path / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(m if isinstance(m, str) else " ".join(m) for m in merges) + "\n"
    )
    added = {
        str(i): {
            "content": t,
            "special": True,
            "normalized": False,
            "lstrip": False,
            "rstrip": False,
            "single_word": False,
        }
        for t, i in vocab.items()
        if t.startswith("<|")
    }
    (path / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "Qwen2Tokenizer",
                "added_tokens_decoder": added,
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "bos_token": None,
                "unk_token": None,
                "model_max_length": 32768,
                "errors": "replace",
                "split_special_tokens": False,
            }
        )
    )
    (path / "chat_template.json").write_text(json.dumps({"chat_template": policy.processor.chat_template}))
    ip = policy.processor.image_processor
    (path / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "min_pixels": ip.size["shortest_edge"],
                "max_pixels": ip.size["longest_edge"],
                "patch_size": ip.patch_size,
                "temporal_patch_size": 2,
                "merge_size": 2,
                "image_mean": list(ip.image_mean),
                "image_std": list(ip.image_std),
                "image_processor_type": "Qwen2VLImageProcessor",
                "processor_class": "Qwen2VLProcessor" if model_type == "qwen2_vl" else "Qwen2_5_VLProcessor",
            }
        )
    )


@pytest.mark.parametrize(
    ("model_type", "proc_cls"),
    [("qwen2_5_vl", Qwen2_5_VLImageOnlyProcessor), ("qwen2_vl", Qwen2VLImageOnlyProcessor)],
)
def test_hub_layout_loads_through_load_policy(tmp_path, model_type, proc_cls):
    policy = build_tiny_policy("tiny", tokenizer_corpus=["How many red squares? \\boxed{3}"] * 3)
    path = tmp_path / model_type
    path.mkdir()
    _hub_layout(policy, path, model_type)
    assert not (path / "processor_config.json").exists()

    loaded = load_policy(path)
    assert loaded.model.config.model_type == model_type
    assert type(loaded.processor) is proc_cls
    assert type(loaded.tokenizer).__name__ == "Qwen2Tokenizer"
    prompt = build_prompt(loaded.processor, "How many red squares?", 1)
    assert prompt == build_prompt(policy.processor, "How many red squares?", 1)
    img = Image.new("RGB", (64, 64), (250, 0, 0))
    batch = loaded.processor(text=[prompt], images=[img], return_tensors="pt")
    ref = policy.processor(text=[prompt], images=[img], return_tensors="pt")
    # Qwen2Tokenizer rebuilds its own split regex (one digit per token), so ids may differ from mssr's
    # tokenizer, but the vocabulary and the text are the same
    tok = loaded.tokenizer
    assert tok.decode(batch["input_ids"][0]) == policy.tokenizer.decode(ref["input_ids"][0])
    image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    assert image_id == policy.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((batch["input_ids"] == image_id).sum()) == 16
    assert torch.equal(batch["pixel_values"], ref["pixel_values"])
    if model_type == "qwen2_5_vl":  # same weights (hub key names mapped back), same logits
        with torch.no_grad():
            assert torch.allclose(loaded.model(**batch).logits, policy.model(**batch).logits, atol=1e-5)
    out = loaded.model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > batch["input_ids"].shape[1]


def test_pixel_range_override(tmp_path):
    policy = build_tiny_policy("tiny", tokenizer_corpus=["a"])
    policy.save(tmp_path / "p")
    loaded = load_policy(tmp_path / "p", min_pixels=32 * 32, max_pixels=32 * 32)
    batch = loaded.processor(
        text=[build_prompt(loaded.processor, "q", 1)], images=[Image.new("RGB", (64, 64))]
    )
    assert batch["image_grid_thw"][0].tolist() == [1, 4, 4]  # resized to 32x32 -> 4 image tokens
    with pytest.raises(ValueError, match="max_pixels"):
        load_policy(tmp_path / "p", min_pixels=64 * 64, max_pixels=32 * 32)

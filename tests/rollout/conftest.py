"""Fixtures: mssr's tiny Qwen2.5-VL policy, plus a tiny Qwen2-VL built here for cross-family checks.

The Qwen2-VL one follows docs/platform.md "A tiny Qwen2-VL built locally": character-level tokenizer with the Qwen special tokens, PIL image
processor (no torchvision), a processor subclass without the video part, ~0.15M parameters.
"""

from __future__ import annotations

import copy

import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLProcessor,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.processing_utils import ProcessorMixin

from mssr.models import build_prompt, build_tiny_policy
from mssr.rollout import PromptInput

SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
IMAGE_SPAN = "<|vision_start|><|image_pad|><|vision_end|>"


class _ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2VLProcessor without the video processor (which would need torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = "<|image_pad|>"
        self.video_token = "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def make_qwen2vl_processor() -> _ImageOnlyQwen2VLProcessor:
    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(chars)}, merges=[]))
    tok.add_special_tokens(SPECIALS)
    tok.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=8, merge_size=2, temporal_patch_size=2, min_pixels=32 * 32, max_pixels=64 * 64
    )
    return _ImageOnlyQwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer)


def make_qwen2vl_model(processor, seed: int = 0) -> Qwen2VLForConditionalGeneration:
    tok = processor.tokenizer
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "patch_size": 8,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    # Random init gives near-uniform next-token distributions; widen them so tests see real structure
    # (peaked tokens, early EOS, images that change the answer).
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)
        model.model.visual.merger.mlp[-1].weight.mul_(20.0)
    return model.eval()


def chat(question: str, n_images: int) -> str:
    return f"<|im_start|>user\n{IMAGE_SPAN * n_images}{question}<|im_end|>\n<|im_start|>assistant\n"


CORPUS = [
    "What color is the square? It is red, green, blue or yellow.",
    "How many bars are there? Count them: 1 2 3 4 5.",
    "<think> reasoning </think> The answer is \\boxed{4}.",
]


@pytest.fixture(scope="session")
def policy():
    return build_tiny_policy("tiny", tokenizer_corpus=CORPUS, seed=0)


@pytest.fixture(scope="session")
def processor(policy):
    return policy.processor


@pytest.fixture
def model(policy):
    """A fresh copy per test (tests may hook, bias or train it)."""
    return copy.deepcopy(policy.model)


def _image(color: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    img = Image.new("RGB", size, color)
    # A second colour block so images are not constant.
    img.paste((255 - color[0], color[2], color[1]), (0, 0, size[0] // 2, size[1] // 3))
    return img


def make_prompts(template) -> list[PromptInput]:
    """Mixed prompts: lengths differ (left padding), image counts 1/0/2/1, image sizes differ (patch counts)."""
    return [
        PromptInput("red", template("What color?", 1), [_image((220, 30, 30), (64, 64))]),
        PromptInput("plain", template("No picture here, just text.", 0), []),
        PromptInput(
            "two", template("Two?", 2), [_image((30, 200, 40), (48, 64)), _image((20, 20, 230), (64, 32))]
        ),
        PromptInput(
            "blue", template("And this one, which color is it?", 1), [_image((20, 40, 240), (32, 64))]
        ),
    ]


@pytest.fixture(scope="session")
def prompts(processor) -> list[PromptInput]:
    return make_prompts(lambda q, k: build_prompt(processor, q, k, instruction=None))


@pytest.fixture(scope="session")
def qwen2vl():
    """``(model, processor, prompts)`` of a tiny Qwen2-VL (the other supported family)."""
    processor = make_qwen2vl_processor()
    return make_qwen2vl_model(processor), processor, make_prompts(chat)


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    """Tiny models run far faster on one thread, and much more so on a shared machine (the tests here
    took 15x longer with 2 threads under load); restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

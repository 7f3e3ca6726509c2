"""build_prompt renders the Qwen2-VL chat format exactly."""

from __future__ import annotations

import pytest

from mssr.models import DEFAULT_INSTRUCTION, build_prompt, build_tiny_policy


@pytest.fixture(scope="module")
def processor():
    return build_tiny_policy("tiny", tokenizer_corpus=["a b c"]).processor


VIS = "<|vision_start|><|image_pad|><|vision_end|>"
HEAD = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
TAIL = "<|im_end|>\n<|im_start|>assistant\n"


def test_default_prompt_is_qwen_chat_format(processor):
    got = build_prompt(processor, "How many squares?", 1)
    assert got == HEAD + VIS + "How many squares? " + DEFAULT_INSTRUCTION + TAIL


def test_instruction_none_and_two_images(processor):
    assert build_prompt(processor, "Q?", 2, instruction=None) == HEAD + VIS + VIS + "Q?" + TAIL
    assert build_prompt(processor, "Q?", 0, instruction="") == HEAD + "Q?" + TAIL


def test_custom_system_prompt(processor):
    got = build_prompt(processor, "Q?", 1, instruction="Be brief.", system_prompt="S")
    assert got == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n" + VIS + "Q? Be brief." + TAIL


def test_image_placeholders_keep_position(processor):
    got = build_prompt(processor, "Left <image> vs right <image>?", 2, instruction=None)
    assert got == HEAD + "Left " + VIS + " vs right " + VIS + "?" + TAIL
    with pytest.raises(ValueError, match="placeholders"):
        build_prompt(processor, "Only <image>", 2)


def test_reference_instruction_text():
    # docs/method.md "Reward and prompt", verbatim
    assert DEFAULT_INSTRUCTION == (
        "You FIRST think about the reasoning process as an internal monologue and then provide the final "
        "answer. The reasoning process MUST BE enclosed within <think> </think> tags. The final answer MUST BE "
        "put in \\boxed{}."
    )

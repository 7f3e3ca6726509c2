"""The locally trained Qwen-style BPE: special tokens, whole-word answers, round-trip, determinism."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mssr.models.chat import DEFAULT_INSTRUCTION
from mssr.models.tokenizer import SPECIAL_TOKENS, THINK_TOKENS, build_tokenizer

TASK_CORPUS = [
    "How many red circles are in the image? <think>I see 3 red circles and 2 blue squares. "
    "So there are 3 red circles.</think> \\boxed{3}",
    "What is the sum of the two numbers? <think>The numbers are 17 and 25. 17 + 25 = 42.</think> \\boxed{42}",
    "Which bar is the tallest? Choices: (A) red (B) green (C) blue <think>green is 9, the others are lower."
    "</think> \\boxed{B}",
    "The triangle has angles 40 and 75 degrees. What is the third angle? <think>180 - 40 - 75 = 65</think>"
    " \\boxed{65}",
] * 10


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(TASK_CORPUS, vocab_size=700)


def test_special_tokens_are_single_distinct_tokens(tok):
    ids = [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    assert ids == list(range(len(SPECIAL_TOKENS)))  # assigned first, in order
    for t in SPECIAL_TOKENS + THINK_TOKENS:
        assert tok(t, add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids(t)]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    # a prompt-like string keeps the vision tokens atomic
    enc = tok("<|vision_start|><|image_pad|><|image_pad|><|vision_end|>", add_special_tokens=False)[
        "input_ids"
    ]
    assert enc == [3, 5, 5, 4]


def test_task_words_and_numbers_are_whole_tokens(tok):
    for word in [" red", " circles", " blue", " sum", " angle", " tallest", " think", " answer"]:
        assert len(tok(word, add_special_tokens=False)["input_ids"]) == 1, word
    for n in range(0, 201):
        assert len(tok(str(n), add_special_tokens=False)["input_ids"]) == 1, n
    # the answer format: \boxed{42} is a handful of tokens with the number whole
    pieces = tok.convert_ids_to_tokens(tok("\\boxed{42}", add_special_tokens=False)["input_ids"])
    assert "42" in pieces and len(pieces) <= 5
    # numbers split into runs of at most three digits, each run into at most two known pieces
    assert len(tok("1234567", add_special_tokens=False)["input_ids"]) <= 6


def test_instruction_is_one_token_per_word(tok):
    n = len(tok(DEFAULT_INSTRUCTION, add_special_tokens=False)["input_ids"])
    words = len(DEFAULT_INSTRUCTION.split())
    assert n <= words + 8  # whole words; only punctuation/boxed pieces add tokens


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_any_text_round_trips(tok, text):
    import unicodedata

    text = unicodedata.normalize("NFC", text)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text


def test_training_is_deterministic():
    a = build_tokenizer(TASK_CORPUS, vocab_size=700)
    b = build_tokenizer(list(TASK_CORPUS), vocab_size=700)
    assert a.get_vocab() == b.get_vocab()
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()


def test_too_small_vocab_is_refused():
    with pytest.raises(ValueError, match="vocab_size"):
        build_tokenizer([], vocab_size=100)

"""Fixtures for the evaluation tests: a fake processor, a tiny random policy, a small built-in dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import FakeProcessor


@pytest.fixture
def fake_processor():
    return FakeProcessor()


@pytest.fixture(scope="session")
def tiny_policy():
    """A random tiny policy whose greedy responses vary with the prompt (not a trained model)."""
    import torch

    from mssr.data.builtin import corpus_texts
    from mssr.models import build_tiny_policy

    policy = build_tiny_policy("tiny", tokenizer_corpus=list(corpus_texts(100)), seed=0)
    with torch.no_grad():  # sharpen the random init so greedy responses differ from prompt to prompt
        for w in policy.model.parameters():
            if w.dim() > 1:
                w.mul_(4.0)
    return policy


@pytest.fixture(scope="session")
def tiny_policy_dir(tiny_policy, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("policy")
    tiny_policy.save(path)
    return path


@pytest.fixture(scope="session")
def builtin_dir(tmp_path_factory) -> Path:
    from mssr.data.builtin import generate_dataset

    path = tmp_path_factory.mktemp("builtin")
    generate_dataset(path, n_train=8, n_val=6, n_test=4, seed=3)
    return path

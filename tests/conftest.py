"""Suite-wide settings: one intra-op thread per test process.

The models in tests are tiny, so threads buy nothing, and on a shared 2-core machine oversubscribed OpenMP
threads were measured to slow a training step 40× (2 threads under load 6: 63 s/step; 1 thread: 1.5 s).
"""

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory) -> Path:
    """A tiny random policy saved once per session (shared by the trainer and compare tests)."""
    from mssr.data.builtin import corpus_texts
    from mssr.models import build_tiny_policy

    path = tmp_path_factory.mktemp("policy")
    build_tiny_policy("tiny", tokenizer_corpus=list(corpus_texts(300)), seed=0).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """A tiny built-in dataset (24 train / 4 val items) written once per session."""
    from mssr.data.builtin import generate_dataset

    path = tmp_path_factory.mktemp("data")
    generate_dataset(path, n_train=24, n_val=4, n_test=0, seed=5)
    return path

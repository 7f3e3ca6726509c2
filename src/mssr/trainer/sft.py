"""Deprecated: the SFT warm start lives in :mod:`mssr.sft`. This module keeps the old import path working for
users; the library itself imports :mod:`mssr.sft` directly."""

from mssr.io import cache_root as default_cache_dir
from mssr.sft.cache import DONE_FILE, ensure_base_policy, read_metrics, run_sft
from mssr.sft.config import SFT_VERSION, SFTConfig
from mssr.sft.data import collate, encode_example, encode_examples, response_nll

__all__ = [
    "DONE_FILE",
    "SFT_VERSION",
    "SFTConfig",
    "collate",
    "default_cache_dir",
    "encode_example",
    "encode_examples",
    "ensure_base_policy",
    "read_metrics",
    "response_nll",
    "run_sft",
]

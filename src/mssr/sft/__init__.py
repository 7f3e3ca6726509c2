"""Supervised warm start: teach a freshly built tiny policy the answer format and some competence.

A tiny model never writes ``\\boxed{}`` by chance (docs/platform.md "Making a tiny model learn in minutes"), so
RL starts from a base obtained by supervised fine-tuning on the built-in task's worked solutions
(``<think>…</think> \\boxed{answer}``, then the family's end-of-turn token: ``<|im_end|>`` for Qwen, Gemma 3's
``<end_of_turn>``, Idefics3's ``<end_of_utterance>``). The loss is the token-mean cross-entropy over
response tokens only. Training stops at ``max_steps`` or, with ``stop_accuracy``, at the first check where
the *sampled* (T = 1, top-k off, top-p 1) accuracy on a held-out dev slice reaches it, so that the base
sits in a band that leaves RL room to improve (25–60 %).

Modules: :mod:`~mssr.sft.config` (:class:`SFTConfig`, the cache key, ``mssr sft``'s loader),
:mod:`~mssr.sft.data` (tokenised examples, batches, the response-only loss), :mod:`~mssr.sft.evaluate` (the
dev/test accuracy on the shared evaluator and rollout engine), :mod:`~mssr.sft.trainer` (the optimisation
loop) and :mod:`~mssr.sft.cache` (the cached run: :func:`run_sft`, :func:`ensure_base_policy`).

The result is cached under ``cache_dir/sft/<preset>-<hash of the config>``: a policy directory
(:func:`mssr.models.load_policy` reads it), ``sft_config.json``, ``loss_log.jsonl`` and ``metrics.json``.
The SFT data is its own item stream (data seed 1 by default), disjoint from the default RL dataset's seed.
"""

from mssr.sft.cache import DONE_FILE, ensure_base_policy, read_metrics, run_sft
from mssr.sft.config import SFT_VERSION, SFTConfig, load_sft_config

__all__ = [
    "DONE_FILE",
    "SFT_VERSION",
    "SFTConfig",
    "ensure_base_policy",
    "load_sft_config",
    "read_metrics",
    "run_sft",
]

"""Answer verification and rewards (strings, answers and dataset columns; nothing about tensors or models).

The interface the trainer calls::

    from mssr.rewards import build_reward, score_batch, verify

    verify(response, answer, *, answer_type=None, choices=None, mode="strict", precision=None,
           require_clean_end=False, question=None) -> Verdict  # Verdict(correct, extracted, reason)
    # question: a restated question is never read as the answer

    reward = build_reward(spec)
    # spec: "accuracy" | "format" | {"accuracy": 1.0, "format": 0.0} | "pkg.mod:func" | "path/to/file.py:func"
    #       | a callable f(response: str, record: dict) -> float | dict | None
    # build_reward("accuracy", require_clean_end=True): nothing but whitespace/closing delimiters/end tags may
    # follow the final \\boxed{} or </answer>.

    result = score_batch(reward, responses, records, *, timeout_s=5.0, num_workers=0,
                         binarize_threshold=None, require_unit_interval=False) -> ScoreResult
    # records carry the dataset columns: "answer", "answer_type", "choices", "question", "images" (PIL), extras.
    # ScoreResult: scores: list[float | None]  (None = excluded: raised, timed out, or the reward said None),
    #              extras: dict[str, list[float | None]], n_errors, n_timeouts, errors (first few), backend

Guarantees of ``score_batch``:

* ``num_workers=0``: in-process on one persistent daemon thread; callable from any thread (no
  ``signal.alarm``). A timeout interrupts Python code at the next bytecode; C code that holds the GIL (e.g. a
  gigantic integer power) cannot be interrupted in-process — mssr's verifier refuses such inputs before
  evaluating them, but untrusted plug-ins should run with ``num_workers > 0``.
* ``num_workers > 0``: a persistent process pool (forkserver), created on first use and reused; an item that
  overruns gets its worker killed and replaced — a hard timeout.
* Rewards that cannot be pickled (lambdas, closures) run in-process even when ``num_workers > 0``
  (``result.backend`` says so). Plug-ins given by name are pickled by name and re-imported by the workers.

``verify`` modes: ``strict`` (training: value equality, exact option matching, refusals and non-answers
wrong) and ``official`` (MathVista's scoring conventions, to reproduce published numbers). See
``docs/rewards.md``.
"""

from mssr.rewards.builtin import (
    AccuracyReward,
    CallableReward,
    FormatReward,
    PluginReward,
    RewardSpecError,
    WeightedReward,
    build_reward,
    load_callable,
)
from mssr.rewards.extract import Extraction, extract_answer
from mssr.rewards.scoring import RewardRangeError, ScoreResult, score_batch
from mssr.rewards.verify import MODES, Verdict, is_refusal, verify

__all__ = [
    "MODES",
    "AccuracyReward",
    "CallableReward",
    "Extraction",
    "FormatReward",
    "PluginReward",
    "RewardRangeError",
    "RewardSpecError",
    "ScoreResult",
    "Verdict",
    "WeightedReward",
    "build_reward",
    "extract_answer",
    "is_refusal",
    "load_callable",
    "score_batch",
    "verify",
]

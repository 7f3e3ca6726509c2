"""Sampled dev/test accuracy of the SFT policy, on the shared path: prompts from
:func:`mssr.rollout.prompting.records_to_prompts`, sampling by :class:`mssr.rollout.engine.HFRolloutEngine`,
grading by :func:`mssr.evaluation.evaluator.evaluate` with an exact-match verdict built on
:func:`mssr.rewards.extract.last_boxed`.

Sampling: T = 1, top-k off, top-p 1, vision tokens suppressed, stop at ``<|im_end|>``/``<|endoftext|>``. The
records are sampled ``batch_size`` at a time, each call seeded by the next draw of a generator seeded with
``seed`` — the stream the warm start's stop checks have always used, so a cached base's key keeps meaning the
same training run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mssr.models import Policy
from mssr.rewards.extract import last_boxed
from mssr.rollout.batch import RolloutBatch

VERIFIER = "exact last-boxed match of an ended response (mssr.sft.evaluate)"


def last_braced_box(text: str) -> tuple[str, int, int] | None:
    """The last box of :func:`mssr.rewards.extract.last_boxed` written ``\\boxed{…}`` (content, start, end).

    The shared extractor also reads ``\\boxed x``, ``\\boxed {x}`` and ``\\fbox{x}``, which the warm start's
    format check and verdict have never counted: a tiny model's early samples are full of such near-misses
    (on the default task 8 of 100 dev responses at step 20), and counting them would move the reported format
    rate and could move the stop step.
    """
    found = last_boxed(text)
    while found is not None and not text.startswith("\\boxed{", found[1]):
        found = last_boxed(text[: found[1]])
    return found


class ExactBoxedMatch:
    """1.0 if the last ``\\boxed{…}`` (:func:`last_braced_box`) holds exactly the answer (whitespace-trimmed,
    case-insensitive) and nothing but whitespace follows it, else 0.0.

    Stricter than :class:`mssr.rewards.AccuracyReward` (no value equality, no trailing full stop): the warm
    start stops at the first check whose accuracy reaches ``stop_accuracy``, so its verdict decides where a
    cached base stops, and must stay what it was when those bases were trained.
    """

    columns: tuple[str, ...] = ("answer",)

    def __call__(self, response: str, record: Mapping[str, Any]) -> float:
        found = last_braced_box(response)
        if found is None:
            return 0.0
        content, _, end = found
        ok = content.strip().lower() == str(record["answer"]).strip().lower() and not response[end:].strip()
        return 1.0 if ok else 0.0

    def __repr__(self) -> str:
        return "ExactBoxedMatch()"


class _RawTextEngine:
    """The rollout engine, with each response's text decoded *with* special tokens (the end token dropped),
    so a stray ``<|im_start|>`` counts against the answer as the strict verdict demands; keeps the batches for
    the entropy report."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.batches: list[RolloutBatch] = []

    def generate(self, prompts: Sequence[Any], **kw: Any) -> RolloutBatch:
        batch = self.engine.generate(prompts, return_logprobs=True, **kw)
        tok = self.engine.tokenizer
        lengths = batch.response_mask.sum(-1).long().tolist()
        texts = []
        for r, length in enumerate(lengths):
            ids = batch.response_ids[r, :length].tolist()
            if not batch.truncated[r]:
                ids = ids[:-1]  # the end token
            texts.append(tok.decode(ids, skip_special_tokens=False))
        batch.response_text = texts
        self.batches.append(batch)
        return batch


@torch.no_grad()
def evaluate_sampled(
    policy: Policy,
    records: Sequence[Any],
    *,
    instruction: str | None,
    seed: int,
    max_new_tokens: int = 64,
    batch_size: int = 64,
    temperature: float = 1.0,
) -> dict[str, Any]:
    """Sampled accuracy (an unended response counts as wrong), the format rate (ended, ``</think>`` and a
    ``\\boxed{}``), the ended rate, the mean response length (end token included), and the mean over response
    tokens (end token included) of the sampled-token entropy −p log p and of the full-vocabulary entropy of the
    distribution sampled from."""
    from mssr.evaluation.evaluator import evaluate
    from mssr.rollout.engine import HFRolloutEngine
    from mssr.rollout.logprobs import compute_logprobs
    from mssr.rollout.prompting import records_to_prompts

    model = policy.model
    was_training = model.training
    model.eval()
    engine = _RawTextEngine(HFRolloutEngine(model, policy.processor))
    prompts = records_to_prompts(records, policy.processor, instruction=instruction)
    reward = ExactBoxedMatch()
    gen = torch.Generator().manual_seed(seed)
    correct = formatted = ended = 0
    by_family: dict[str, list[int]] = {}
    n_tok = 0
    sum_sampled = sum_full = 0.0
    lengths: list[int] = []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        res = evaluate(
            engine,
            prompts[start : start + batch_size],
            chunk,
            reward=reward,
            greedy=False,
            temperature=temperature,
            top_p=1.0,
            top_k=0,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            seed=int(torch.randint(0, 2**31 - 1, (1,), generator=gen)),
        )
        batch = engine.batches[-1]
        mask = batch.response_mask > 0
        sampled = -(batch.rollout_logprobs.exp() * batch.rollout_logprobs)
        full = compute_logprobs(model, batch, entropy="full").entropy
        for i, (r, item) in enumerate(zip(chunk, res.items, strict=True)):
            sample = item.samples[0]
            text = sample.response
            ok_end = not sample.truncated
            ended += ok_end
            formatted += ok_end and "</think>" in text and last_braced_box(text) is not None
            hit = ok_end and sample.correct
            correct += hit
            fam = by_family.setdefault(str(r.extra.get("family", "all")), [0, 0])
            fam[0] += hit
            fam[1] += 1
            lengths.append(sample.n_tokens)
            n_tok += sample.n_tokens
            sum_sampled += float(sampled[i][mask[i]].sum())
            sum_full += float(full[i][mask[i]].sum())
    model.train(was_training)
    n = max(len(records), 1)
    return {
        "accuracy": correct / n,
        "format_rate": formatted / n,
        "ended_rate": ended / n,
        "mean_response_tokens": sum(lengths) / n,
        "sampled_token_entropy": sum_sampled / max(n_tok, 1),
        "full_entropy": sum_full / max(n_tok, 1),
        "n": len(records),
        "accuracy_by_family": {k: round(c / t, 4) for k, (c, t) in sorted(by_family.items())},
        "verifier": VERIFIER,
    }

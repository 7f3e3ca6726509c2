"""Benchmark grading: each item's convention (``extra["grading"]``, see
:mod:`mssr.evaluation.benchmarks.base`) applied through mssr's verifier (:func:`mssr.rewards.verify`).

:class:`BenchmarkReward` is a reward in the sense of ``docs/rewards.md`` (``reward(response, record) ->
float``, picklable, declares the columns it reads), so benchmark grading runs through the same
:func:`mssr.rewards.score_batch` as training rewards: deadlines per item, worker processes, error counts.
:func:`explain` gives the per-response diagnostics written to the results files (extracted answer, reason).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mssr.evaluation.benchmarks.base import letters_of
from mssr.rewards import Verdict, extract_answer, is_refusal, verify
from mssr.rewards.builtin import is_delimited
from mssr.rewards.text import to_text

_YES_NO = re.compile(r"^\W*(yes|no|true|false)\b", re.I)


def _int_or_none(x: Any) -> int | None:
    try:
        return None if x is None or x == "" else int(x)
    except (TypeError, ValueError):
        return None


class BenchmarkReward:
    """1.0 when the response's final answer is right under the item's benchmark convention, else 0.0.

    Args:
        mode: ``strict`` (mssr's rules) or ``official`` (MathVista's scoring conventions, for options and
            numbers; see docs/rewards.md).
        require_delimited: only an answer in ``\\boxed{}``/``<answer>`` counts (the paper's training reward);
            ``False`` (default) also reads "the answer is …" and the other fallbacks of
            :func:`mssr.rewards.extract_answer`, closer to the LLM judges benchmarks are usually scored with.
        require_clean_end: nothing but whitespace/closing delimiters may follow the final answer.

    Conventions (``record["grading"]``):
      ``choice``: gold = an option letter; the option texts (``choices``) let the answer be the text too.
      Options whose texts are themselves letters (We-Math's "A. B; B. C; …") are graded by letter only, so
      "\\boxed{C}" means option C. ``letters``: the set of letters must match exactly (order free).
      ``yesno``: the answer's first word, yes/no (true/false accepted). ``free``: :func:`verify` with the
      benchmark's answer type (``verify_type``) and ``precision``. Records without ``grading`` (the built-in
      task, your own JSONL) are graded by their ``answer_type``.
    """

    columns: tuple[str, ...] = (
        "answer",
        "answer_type",
        "choices",
        "precision",
        "grading",
        "gold",
        "verify_type",
    )

    def __init__(
        self, mode: str = "strict", require_delimited: bool = False, require_clean_end: bool = False
    ):
        if mode not in ("strict", "official"):
            raise ValueError(f"mode must be 'strict' or 'official', got {mode!r}")
        self.mode = mode
        self.require_delimited = require_delimited
        self.require_clean_end = require_clean_end

    def __call__(self, response: str, record: Mapping[str, Any]) -> float:
        return 1.0 if self.explain(response, record).correct else 0.0

    def explain(self, response: str, record: Mapping[str, Any]) -> Verdict:
        text = to_text(response)
        if self.require_delimited and not is_delimited(text):
            return Verdict(False, None, "not_delimited")
        grading = record.get("grading") or ("choice" if record.get("answer_type") == "choice" else "free")
        answer = to_text(record["answer"]).strip()
        if grading == "choice":
            return self._choice(text, answer, record.get("choices") or None, record.get("gold"))
        if grading == "letters":
            return self._letters(text, answer)
        if grading == "yesno":
            return self._yesno(text, answer)
        if grading == "free":
            vtype = record.get("verify_type")
            if vtype is None and record.get("answer_type") in ("integer", "float"):
                vtype = record["answer_type"]
            return verify(
                text,
                record.get("gold") or answer,
                answer_type=vtype,
                mode=self.mode,
                precision=_int_or_none(record.get("precision")),
                require_clean_end=self.require_clean_end,
            )
        raise ValueError(f"unknown grading convention {grading!r} for item {record.get('id')!r}")

    def _choice(self, text: str, letter: str, choices: list[str] | None, gold: Any) -> Verdict:
        if choices:
            keys = [" ".join(str(c).split()).strip("().").strip().upper() for c in choices]
            letters = {chr(ord("A") + i) for i in range(len(choices))}
            if letters & set(keys) or len(set(keys)) < len(keys):
                choices = None  # option texts that read as option letters, or repeated: grade the letter
        if choices:
            index = ord(letter) - ord("A")
            target = gold if isinstance(gold, str) and gold in choices else choices[index]
            return verify(
                text,
                target,
                choices=list(choices),
                mode=self.mode,
                require_clean_end=self.require_clean_end,
            )
        return verify(text, letter, mode="strict", require_clean_end=self.require_clean_end)

    def _extraction(self, text: str, choices: list[str] | None = None) -> tuple[str | None, Verdict | None]:
        ex = extract_answer(text, choices=choices)
        if ex is None:
            return None, Verdict(False, None, "refusal" if is_refusal(text) else "no_answer")
        if self.require_clean_end:
            from mssr.rewards.verify import ends_cleanly

            if not ends_cleanly(text, ex):
                return ex.text, Verdict(False, ex.text, "unclean_end")
        return ex.text, None

    def _letters(self, text: str, gold: str) -> Verdict:
        pred, failed = self._extraction(text)
        if failed is not None:
            return failed
        assert pred is not None
        got = letters_of(pred.upper() if len(pred) <= 40 else pred)
        if not got:
            return Verdict(False, pred, "no_choice_match")
        ok = got == letters_of(gold)
        return Verdict(ok, pred, "match" if ok else "mismatch")

    def _yesno(self, text: str, gold: str) -> Verdict:
        pred, failed = self._extraction(text, ["Yes", "No"])
        if failed is not None:
            return failed
        assert pred is not None
        m = _YES_NO.match(pred)
        if m is None:
            return Verdict(False, pred, "refusal" if is_refusal(pred) else "no_choice_match")
        said = "yes" if m.group(1).lower() in ("yes", "true") else "no"
        ok = said == gold.strip().lower()
        return Verdict(ok, pred, "match" if ok else "mismatch")

    def __repr__(self) -> str:
        return (
            f"BenchmarkReward(mode={self.mode!r}, require_delimited={self.require_delimited}, "
            f"require_clean_end={self.require_clean_end})"
        )


def explain(reward: Any, response: str, record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(extracted answer, reason)`` for one response, for the results file.

    For a reward with an ``explain`` method (:class:`BenchmarkReward`, mssr's ``accuracy`` reward) this is the
    verdict the reward itself reached; for any other reward only the extraction is known (reason ``None``).
    """
    text = to_text(response)
    if hasattr(reward, "explain"):
        v = reward.explain(text, record)
        return v.extracted, v.reason
    ex = extract_answer(text, choices=record.get("choices") or None)
    return (ex.text if ex is not None else None), None

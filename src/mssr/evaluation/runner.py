"""``mssr eval``'s engine room: evaluate one policy on loaded benchmarks, chunk by chunk through
:func:`mssr.evaluation.evaluator.evaluate` (the function training's validation calls), appending per-item
results as it goes, resuming where a previous run stopped, and summarising.

The default protocol is the paper's (docs/method.md "Reward and prompt"): the think/boxed instruction, greedy
decoding, pass@1. ``samples > 1`` samples that many responses per item (temperature/top-p) for pass@k.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mssr.evaluation.benchmarks.base import BenchItem, BenchmarkData
from mssr.evaluation.evaluator import EvalResult, evaluate
from mssr.evaluation.grading import BenchmarkReward
from mssr.evaluation.results import ResultsError, ResultStore
from mssr.evaluation.summary import BenchmarkSummary, RunSummary, format_details, format_table, summarize
from mssr.io import write_json_atomic
from mssr.rewards import build_reward
from mssr.rollout.prompting import records_to_prompts


@dataclass
class EvalSettings:
    """How one benchmark is evaluated. The fields in :attr:`PROTOCOL` decide the numbers; a resumed run must
    use the same values (the rest only affect speed).

    Attributes:
        samples: responses per item; 1 = greedy decoding (pass@1 = accuracy), > 1 = sampling for pass@k.
        ks: the k of pass@k to report (each ≤ samples).
        temperature, top_p, top_k: sampling parameters when ``samples > 1`` (ignored when greedy).
        max_new_tokens: the response length limit (a response that hits it counts as ``truncated``).
        instruction: ``"default"`` = docs/method.md's think/boxed instruction; ``None`` = none; else the text.
        system_prompt: replaces the chat template's default system turn.
        reward: a reward spec (``docs/rewards.md``) replacing the benchmark's grading convention, e.g.
            ``"accuracy"`` (the training reward); ``None`` = :class:`~mssr.evaluation.grading.BenchmarkReward`.
        mode, require_delimited, require_clean_end: grading options (of ``BenchmarkReward``; for
            ``reward="accuracy"`` only ``require_clean_end`` applies).
        seed: sampling seed (each chunk of items draws from ``seed + index of its first item``).
        batch_size: prompts per generation forward; chunk_size: items per write to the results file
            (default ``batch_size``); timeout_s, num_workers: grading deadline per response and processes.
    """

    samples: int = 1
    ks: tuple[int, ...] = (1,)
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 2048
    instruction: str | None = "default"
    system_prompt: str | None = None
    reward: str | None = None
    mode: str = "strict"
    require_delimited: bool = False
    require_clean_end: bool = False
    seed: int = 0
    batch_size: int = 32
    chunk_size: int | None = None
    timeout_s: float = 5.0
    num_workers: int = 0

    PROTOCOL = (
        "samples",
        "temperature",
        "top_p",
        "top_k",
        "max_new_tokens",
        "instruction",
        "system_prompt",
        "reward",
        "mode",
        "require_delimited",
        "require_clean_end",
        "seed",
    )

    def __post_init__(self) -> None:
        self.ks = tuple(sorted(set(self.ks) | {1}))
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        bad = [k for k in self.ks if not 1 <= k <= self.samples]
        if bad:
            raise ValueError(f"pass@k needs 1 <= k <= samples ({self.samples}); got k={bad}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1")

    @property
    def greedy(self) -> bool:
        return self.samples == 1

    def protocol(self) -> dict[str, Any]:
        """The settings that decide the scores (recorded in ``run.json``; compared when resuming)."""
        d = {k: getattr(self, k) for k in self.PROTOCOL}
        if self.greedy:  # sampling parameters do not matter for greedy decoding
            for k in ("temperature", "top_p", "top_k", "seed"):
                d[k] = None
        d["ks"] = list(self.ks)
        return d

    def replace(self, **changes: Any) -> EvalSettings:
        return dataclasses.replace(self, **changes)

    def build_reward(self) -> Any:
        """The reward that grades this benchmark's responses."""
        if self.reward is None:
            return BenchmarkReward(self.mode, self.require_delimited, self.require_clean_end)
        if self.reward == "accuracy":
            return build_reward("accuracy", require_clean_end=self.require_clean_end)
        return build_reward(self.reward)


Progress = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def result_row(item: BenchItem, index: int, res_item: Any) -> dict[str, Any]:
    """The JSONL row of one item."""
    return {
        "id": item.id,
        "index": index,
        "answer": item.answer,
        "grading": item.extra.get("grading"),
        "category": item.extra.get("category"),
        "n": res_item.n,
        "c": res_item.c,
        "samples": [
            {
                "response": s.response,
                "extracted": s.extracted,
                "reason": s.reason,
                "correct": s.correct,
                "score": s.score,
                "truncated": s.truncated,
                "tokens": s.n_tokens,
            }
            for s in res_item.samples
        ],
        "time_s": round(res_item.time_s, 6),
    }


def run_benchmark(
    engine: Any,
    processor: Any,
    data: BenchmarkData,
    settings: EvalSettings,
    store: ResultStore,
    *,
    progress: Progress | None = _stderr,
    on_chunk: Callable[[EvalResult], None] | None = None,
) -> BenchmarkSummary:
    """Evaluate the items of ``data`` that ``store`` has no result for, appending results chunk by chunk.

    Items already in the store are never evaluated again; an interruption loses at most the chunk in flight
    (it is redone on the next call). Raises :class:`ResultsError` when the store holds ids the benchmark does
    not have (the benchmark file changed since the first run).
    """
    done = store.load()
    position = {it.id: i for i, it in enumerate(data.items)}
    stray = [i for i in done if i not in position]
    if stray:
        raise ResultsError(
            f"{store.path}: {len(stray)} result(s) for items not in {data.source} (e.g. {stray[:3]}); the "
            "benchmark changed since this evaluation started — use a new output directory"
        )
    pending = [it for it in data.items if it.id not in done]
    reward = settings.build_reward()
    chunk = settings.chunk_size or settings.batch_size
    t0 = time.perf_counter()
    if progress and done:
        progress(f"{data.name}: resuming, {len(done)}/{len(data)} items already evaluated")
    for start in range(0, len(pending), chunk):
        part = pending[start : start + chunk]
        records = [it.to_record() for it in part]
        prompts = records_to_prompts(
            records,
            processor,
            instruction=settings.instruction,
            system_prompt=settings.system_prompt,
            namespace=data.name,
        )
        res = evaluate(
            engine,
            prompts,
            records,
            reward=reward,
            greedy=settings.greedy,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=settings.top_k,
            max_new_tokens=settings.max_new_tokens,
            batch_size=settings.batch_size,
            seed=settings.seed + position[part[0].id],
            timeout_s=settings.timeout_s,
            num_workers=settings.num_workers,
            n=settings.samples,
            explain=True,
        )
        store.append(result_row(it, position[it.id], r) for it, r in zip(part, res.items, strict=True))
        if on_chunk is not None:
            on_chunk(res)
        if progress:
            n_done = len(done) + start + len(part)
            progress(
                f"{data.name}: {n_done}/{len(data)} items, chunk accuracy {100 * res.accuracy:.1f}%, "
                f"{time.perf_counter() - t0:.1f} s"
            )
    rows = store.load()
    return summarize(rows.values(), name=data.name, title=data.title, n_items=len(data), ks=settings.ks)


@dataclass
class BenchmarkRun:
    """One benchmark to evaluate and its settings."""

    data: BenchmarkData
    settings: EvalSettings
    extra: dict[str, Any] = field(default_factory=dict)


def _check_resume(meta: dict[str, Any], model: str, name: str, protocol: dict[str, Any], path: Path) -> None:
    if meta.get("model") not in (None, model):
        raise ResultsError(
            f"{path}: this directory holds an evaluation of {meta['model']!r}, not {model!r}; "
            "choose another --out (or --overwrite)"
        )
    old = meta.get("benchmarks", {}).get(name)
    if old is not None and old.get("protocol") != protocol:
        diff = {
            k: (old["protocol"].get(k), protocol.get(k))
            for k in set(old["protocol"]) | set(protocol)
            if old["protocol"].get(k) != protocol.get(k)
        }
        raise ResultsError(
            f"{path}: {name} was evaluated with other settings {diff} (old, new); resuming would mix "
            "protocols — use the same settings, another --out, or --overwrite"
        )


def evaluate_policy(
    policy: Any,
    runs: Sequence[BenchmarkRun],
    out_dir: str | Path,
    *,
    label: str,
    model: str,
    engine: Any | None = None,
    progress: Progress | None = _stderr,
) -> RunSummary:
    """Evaluate ``policy`` (``.model``, ``.processor``) on every benchmark of ``runs`` into ``out_dir``
    (resuming whatever is already there), write ``summary.json``/``summary.md`` and return the summary.

    ``engine``: a rollout engine (default: :class:`~mssr.rollout.HFRolloutEngine` over the policy, with the
    vision special tokens suppressed, as in training).
    """
    out = Path(out_dir)
    meta_path = out / "run.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    for r in runs:
        _check_resume(meta, model, r.data.name, r.settings.protocol(), meta_path)
    if engine is None:
        from mssr.rollout import HFRolloutEngine
        from mssr.rollout.engine import default_suppress_token_ids

        suppress = default_suppress_token_ids(policy.model, policy.processor)
        engine = HFRolloutEngine(policy.model, policy.processor, suppress_token_ids=suppress)
    meta.update(label=label, model=model)
    meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
    benches = meta.setdefault("benchmarks", {})
    for r in runs:
        benches[r.data.name] = {
            "title": r.data.title,
            "source": r.data.source,
            "n_items": len(r.data),
            "skipped": r.data.skipped,
            "protocol": r.settings.protocol(),
            **r.extra,
        }
    write_json_atomic(meta_path, meta)
    summary = RunSummary(label=label, model=model)
    was_training = getattr(policy.model, "training", False)
    policy.model.eval()
    try:
        for r in runs:
            store = ResultStore(out / "results" / f"{r.data.name}.jsonl")
            summary.benchmarks[r.data.name] = run_benchmark(
                engine, policy.processor, r.data, r.settings, store, progress=progress
            )
    finally:
        if was_training:
            policy.model.train()
    meta["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json_atomic(meta_path, meta)
    write_summary(out, [summary])
    return summary


def write_summary(out: Path, runs: Sequence[RunSummary], name: str = "summary") -> str:
    """Write ``<name>.json`` and ``<name>.md`` (the table plus per-benchmark details); return the table."""
    table = format_table(runs)
    ks = sorted({k for run in runs for b in run.benchmarks.values() for k in b.pass_at if k > 1})
    extra_tables = [f"pass@{k}\n\n{format_table(runs, f'pass@{k}')}" for k in ks]
    details = "\n\n".join(f"{run.label} ({run.model})\n{format_details(run)}" for run in runs)
    md = "\n\n".join(["pass@1 (%)", table, *extra_tables, details]) + "\n"
    (out / f"{name}.md").write_text(md, encoding="utf-8")
    write_json_atomic(out / f"{name}.json", [run.to_dict() for run in runs])
    return table

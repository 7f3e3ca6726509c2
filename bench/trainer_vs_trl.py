"""Wall-clock per 1,000 rollouts: mssr's trainer against TRL's ``GRPOTrainer``, and mssr ``mssr`` vs ``grpo``.

    python bench/trainer_vs_trl.py                    # tiny preset, 8 prompts x 8, 32 new tokens, 4 steps
    python bench/trainer_vs_trl.py --preset small --steps 6 --json out.json
    python bench/trainer_vs_trl.py --quick            # seconds: the smoke test's size
    python bench/trainer_vs_trl.py --profile          # + cProfile of mssr grpo's and TRL's steps
    python bench/trainer_vs_trl.py --levers           # what each of mssr's three savings saves (CPU s)

Arms, all in ONE process, started from the same saved tiny policy (same weights, tokenizer and processor) and
the same prompt pool:

- ``trl_grpo``: TRL ``GRPOTrainer`` (transformers ``generate``), ``beta=0``.
- ``mssr_grpo``: mssr ``algorithm.name=grpo`` with ``algorithm.kl_coef=0`` — the setting matched to TRL.
- ``mssr_grpo_kl``: mssr ``grpo`` as shipped (KL-to-reference loss 0.01, so a reference pass), for the
  algorithm comparison.
- ``mssr_mssr``: mssr ``mssr`` as shipped (KL loss 0.01, kl_window ρ, shaping), ``prompts x group`` prompts
  x 1 rollout, i.e. the same rollouts per step. Its one-off tracker initialisation pass (one rollout per
  training prompt, docs/method.md §1) runs before timing and is reported separately.

Matched on every arm: group size, prompts per step (rollouts per step for ``mssr``), max new tokens,
temperature 1 / top-p 1 / top-k 0, one optimizer step per rollout batch (mssr ``optim.updates_per_step=1``;
TRL ``steps_per_generation = gradient_accumulation_steps``, so one optimizer step consumes exactly one
generation batch), the same micro-batch, lr, weight decay 0, grad clip 1.0 (0.5 for ``mssr``, its preset),
fp32, no gradient checkpointing (TRL's default is on), no validation, checkpointing, logging or progress bars.
The reward is mssr's ``accuracy`` reward for every arm (TRL gets it as a reward function).

Timing: the arms alternate step by step. TRL's ``train()`` drives the loop; at each of its ``on_step_end``
callbacks, one step of every mssr arm runs (in a rotating order), and TRL's step time is the interval between
its consecutive callbacks minus that mssr work — so it includes everything TRL does per step (data loading,
generation, scoring, loss, optimizer, its own bookkeeping). mssr's step time is ``RLTrainer.train_step``
(sample → rollout → score → old log-probs → reference → advantages → update → tracker → metrics). The first
``--warmup`` steps of every arm are excluded. Beside wall-clock, each step's CPU time of this process
(``time.process_time``) is recorded the same way: with one torch thread it counts the work done, not the
waiting for a core, so it is the steadier comparison on a loaded shared machine. If TRL cannot run a
configuration, its error is printed and the mssr arms run alone.

The tiny policy is randomly initialised, so nearly every response runs to ``--max-new-tokens`` in every arm
(mean response lengths are printed); the prompt pool is restricted to prompts of one token length, checked to
be identical under mssr's and TRL's chat templating.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ARMS = ("trl_grpo", "mssr_grpo", "mssr_grpo_kl", "mssr_mssr")
LABELS = {
    "trl_grpo": "TRL GRPOTrainer (beta=0)",
    "mssr_grpo": "mssr grpo (kl_coef=0)",
    "mssr_grpo_kl": "mssr grpo (preset: KL 0.01)",
    "mssr_mssr": "mssr mssr (preset)",
}
MSSR_STAGES = ("gen", "score", "logprob", "ref", "update")


# --------------------------------------------------------------------------- settings and pure helpers
@dataclass
class Settings:
    preset: str = "tiny"
    prompts: int = 8
    group: int = 8
    max_new_tokens: int = 32
    steps: int = 4  # measured steps per arm
    warmup: int = 1  # excluded steps per arm
    micro_batch: int | None = None  # None: min(rollouts per step, 32)
    lr: float = 1e-4
    threads: int = 1
    seed: int = 0
    arms: tuple[str, ...] = ARMS
    n_data: int = 400  # items generated; the pool keeps those of the most common prompt length
    corpus: int = 300  # corpus_texts items for the tokenizer

    @property
    def rollouts(self) -> int:
        return self.prompts * self.group

    @property
    def micro(self) -> int:
        return self.micro_batch if self.micro_batch is not None else min(self.rollouts, 32)

    def validate(self) -> None:
        if self.prompts < 1 or self.group < 1 or self.steps < 1 or self.warmup < 0 or self.max_new_tokens < 1:
            raise ValueError("--prompts, --group, --steps, --max-new-tokens must be >= 1 and --warmup >= 0")
        if self.rollouts % self.micro:
            raise ValueError(
                f"--micro-batch ({self.micro}) must divide prompts x group ({self.rollouts}) so both trainers "
                "split one rollout batch into whole micro-batches"
            )
        unknown = set(self.arms) - set(ARMS)
        if unknown:
            raise ValueError(f"unknown arms {sorted(unknown)}; known: {', '.join(ARMS)}")


QUICK = dict(prompts=2, group=2, max_new_tokens=4, steps=1, warmup=1, n_data=60, corpus=60)


def per_1k(step_seconds: float, rollouts_per_step: int) -> float:
    """Seconds per 1,000 rollouts at ``step_seconds`` per step of ``rollouts_per_step`` rollouts."""
    return 1000.0 * step_seconds / rollouts_per_step


def rotation(names: Sequence[str], round_index: int) -> list[str]:
    """``names`` rotated left by ``round_index``: each arm takes every position in turn."""
    if not names:
        return []
    k = round_index % len(names)
    return [*names[k:], *names[:k]]


def trl_batch_layout(rollouts: int, micro: int) -> dict[str, int]:
    """TRL arguments for one optimizer step per generation batch of ``rollouts`` completions.

    TRL generates ``per_device_train_batch_size × steps_per_generation`` completions at once and steps the
    optimizer every ``gradient_accumulation_steps`` micro-batches; equal values make one generation batch =
    one optimizer step (and let TRL skip its old-log-prob pass, as it does for on-policy steps).
    """
    if rollouts % micro:
        raise ValueError(f"micro-batch {micro} does not divide {rollouts}")
    k = rollouts // micro
    return dict(per_device_train_batch_size=micro, gradient_accumulation_steps=k, steps_per_generation=k)


@dataclass
class ArmResult:
    name: str
    label: str
    rollouts_per_step: int
    prompts_per_step: int
    step_s: list[float] = field(default_factory=list)  # wall-clock, measured steps only
    warmup_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # this process's CPU time, measured steps only
    stages: dict[str, list[float]] = field(default_factory=dict)  # measured steps only
    response_length: list[float] = field(default_factory=list)
    updates_per_step: list[float] = field(default_factory=list)
    error: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"arm": self.name, "label": self.label, "error": self.error}
        if self.step_s:
            med, mean = statistics.median(self.step_s), statistics.fmean(self.step_s)
            out.update(
                step_s_median=med,
                step_s_mean=mean,
                per_1k_median=per_1k(med, self.rollouts_per_step),
                per_1k_mean=per_1k(mean, self.rollouts_per_step),
                cpu_per_1k_median=per_1k(statistics.median(self.cpu_s), self.rollouts_per_step)
                if self.cpu_s
                else None,
                stage_s_mean={k: statistics.fmean(v) for k, v in self.stages.items() if v},
                response_length_mean=statistics.fmean(self.response_length) if self.response_length else None,
            )
        return out


def ratio(ours: ArmResult, peer: ArmResult, key: str = "per_1k_median") -> float | None:
    """``ours / peer`` seconds per 1,000 rollouts (< 1: ours faster); None when either has no measurement."""
    a, b = ours.summary().get(key), peer.summary().get(key)
    return a / b if a is not None and b else None


def format_table(results: dict[str, ArmResult]) -> str:
    head = (
        f"{'arm':<30} {'roll/step':>9} {'s/step med':>10} {'s/1k roll med':>13} {'s/1k mean':>10} "
        f"{'CPU s/1k med':>12} {'resp len':>8}"
    )
    lines = [head, "-" * len(head)]
    for name in ARMS:
        if name not in results:
            continue
        r = results[name]
        s = r.summary()
        if not r.step_s:
            lines.append(f"{r.label:<30} {r.rollouts_per_step:>9}  FAILED: {r.error or 'no measured step'}")
            continue
        lines.append(
            f"{r.label:<30} {r.rollouts_per_step:>9} {s['step_s_median']:>10.3f} {s['per_1k_median']:>13.2f} "
            f"{s['per_1k_mean']:>10.2f} {s['cpu_per_1k_median'] or 0:>12.2f} {s['response_length_mean'] or 0:>8.1f}"
        )
    return "\n".join(lines)


def format_stages(results: dict[str, ArmResult]) -> str:
    lines = ["mean seconds per measured step, by stage:"]
    for name in ARMS:
        r = results.get(name)
        if r is None or not r.step_s:
            continue
        st = r.summary()["stage_s_mean"]
        parts = "  ".join(f"{k}={v:.3f}" for k, v in st.items())
        lines.append(f"  {r.label:<30} {parts}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- shared assets
@dataclass
class Assets:
    policy_dir: Path
    records: list[Any]  # the prompt pool (all of one prompt token length)
    prompt_tokens: int
    trl_prompt_tokens: int | None
    prompt_text_equal: bool | None


def _trl_messages(question: str, instruction: str) -> list[dict[str, Any]]:
    """The prompt as a TRL user would write it: one user turn, the image slot first, then the text."""
    return [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": f"{question} {instruction}"}],
        }
    ]


def build_assets(s: Settings, workdir: Path, *, check_trl: bool = True) -> Assets:
    """Save one tiny policy and pick a prompt pool whose prompts all have the same token length;
    ``check_trl``: also template one prompt the TRL way and compare the token ids."""
    from mssr.data import load_records
    from mssr.data.builtin import corpus_texts, generate_dataset
    from mssr.models import build_tiny_policy
    from mssr.models.chat import DEFAULT_INSTRUCTION
    from mssr.rollout.prompting import records_to_prompts

    policy = build_tiny_policy(s.preset, tokenizer_corpus=list(corpus_texts(s.corpus)), seed=s.seed)
    policy_dir = policy.save(workdir / "policy")
    data_dir = workdir / "data"
    # about a fifth of the items share the most common prompt length; keep >= rollouts prompts in the pool
    generate_dataset(data_dir, n_train=max(s.n_data, 6 * s.rollouts), n_val=0, n_test=0, seed=s.seed + 1)
    records = load_records(data_dir, "train")
    proc = policy.processor
    prompts = records_to_prompts(records, proc)
    lengths = [len(proc(text=[p.text], images=[p.images])["input_ids"][0]) for p in prompts]
    mode, _ = Counter(lengths).most_common(1)[0]
    pool = [r for r, n in zip(records, lengths, strict=True) if n == mode]
    if len(pool) < s.rollouts and "mssr_mssr" in s.arms:
        print(
            f"note: the prompt pool ({len(pool)}) is smaller than mssr's {s.rollouts} prompts per step; "
            "a step then repeats some prompts",
            file=sys.stderr,
        )
    # mssr's prompt text against TRL's chat templating of the same question (first pool item)
    trl_tokens = equal = None
    if check_trl:
        try:
            from trl.data_utils import prepare_multimodal_messages

            rec = pool[0]
            msgs = prepare_multimodal_messages(
                _trl_messages(rec.question, DEFAULT_INSTRUCTION), images=rec.images
            )
            tok = proc.apply_chat_template(
                conversation=[msgs], add_generation_prompt=True, tokenize=True, return_dict=True
            )
            trl_tokens = len(tok["input_ids"][0])
            ours = proc(text=[records_to_prompts([rec], proc)[0].text], images=[rec.images])["input_ids"][0]
            equal = list(map(int, tok["input_ids"][0])) == list(map(int, ours))
        except Exception as e:  # TRL missing or changed: reported, the mssr arms still run
            print(f"note: could not template a prompt the TRL way: {type(e).__name__}: {e}", file=sys.stderr)
    return Assets(policy_dir, pool, mode, trl_tokens, equal)


def make_reward() -> Any:
    from mssr.rewards import build_reward

    return build_reward("accuracy", require_clean_end=True)


# --------------------------------------------------------------------------- mssr arms
def mssr_overrides(arm: str, s: Settings, policy_dir: Path, out: Path) -> list[str]:
    """The dotted overrides of one mssr arm (see the module docstring for what is matched)."""
    common = [
        f"model.path={policy_dir}",
        f"output_dir={out}",
        f"steps={s.warmup + s.steps}",
        f"seed={s.seed}",
        "device=cpu",
        f"rollout.rollouts_per_step={s.rollouts}",
        f"rollout.max_new_tokens={s.max_new_tokens}",
        f"rollout.gen_batch_size={s.rollouts}",
        "rollout.temperature=1.0",
        "rollout.top_p=1.0",
        "optim.updates_per_step=1",
        f"optim.micro_batch_size={s.micro}",
        f"optim.lr={s.lr}",
        "optim.weight_decay=0.0",
        "val.every=0",
        "val.at_start=false",
        "checkpoint.every=0",
        "logging.progress=false",
        "logging.tensorboard=false",
        "logging.plot=false",
    ]
    per_arm = {
        "mssr_grpo": [
            "algorithm.name=grpo",
            f"algorithm.rollouts_per_prompt={s.group}",
            "algorithm.kl_coef=0",
        ],
        "mssr_grpo_kl": ["algorithm.name=grpo", f"algorithm.rollouts_per_prompt={s.group}"],
        "mssr_mssr": ["algorithm.name=mssr"],
    }
    return [*common, *per_arm[arm]]


class MssrArm:
    """One mssr ``RLTrainer`` stepped by hand (``train_step``), so steps can interleave with other arms."""

    def __init__(self, name: str, s: Settings, assets: Assets, reward: Any, workdir: Path) -> None:
        from mssr.config import load_config
        from mssr.models import load_policy
        from mssr.trainer.config import TrainConfig
        from mssr.trainer.trainer import RLTrainer

        self.s = s
        cfg = load_config(TrainConfig, None, mssr_overrides(name, s, assets.policy_dir, workdir / name))
        self.trainer = RLTrainer(
            cfg,
            policy=load_policy(assets.policy_dir),
            train_records=list(assets.records),
            val_records=[],
            reward=reward,
        )
        self.result = ArmResult(name, LABELS[name], s.rollouts, cfg.prompts_per_step)
        self.step_index = 0
        init = self.trainer.initialize_tracker()
        if init:
            self.result.notes["tracker_init_rollouts"] = init["init/rollouts"]
            self.result.notes["tracker_init_s"] = init["init/time_s"]

    def step(self, profiler: cProfile.Profile | None = None) -> None:
        self.step_index += 1
        t0, c0 = time.perf_counter(), time.process_time()
        with profiler if profiler is not None else contextlib.nullcontext():
            m = self.trainer.train_step(self.step_index)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        r = self.result
        if self.step_index <= self.s.warmup:
            r.warmup_s.append(dt)
            return
        r.step_s.append(dt)
        r.cpu_s.append(dc)
        for k in MSSR_STAGES:
            r.stages.setdefault(k, []).append(float(m.get(f"timing_s/{k}", 0.0)))
        r.response_length.append(float(m["response_length/mean"]))
        r.updates_per_step.append(float(m["actor/updates"]))


# --------------------------------------------------------------------------- the TRL arm
def trl_config(s: Settings, out: Path) -> Any:
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(out),
        **trl_batch_layout(s.rollouts, s.micro),
        num_generations=s.group,
        max_completion_length=s.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        beta=0.0,
        num_iterations=1,
        learning_rate=s.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        max_steps=s.warmup + s.steps,
        seed=s.seed,
        use_cpu=True,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        logging_strategy="no",
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        log_completions=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
    )


class _StageTimer:
    """Wraps bound methods of one object and accumulates their wall time by stage name."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, obj: Any, method: str, stage: str) -> None:
        fn = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.totals[stage] = self.totals.get(stage, 0.0) + time.perf_counter() - t0
                self.calls[stage] = self.calls.get(stage, 0) + 1

        setattr(obj, method, timed)

    def take(self) -> tuple[dict[str, float], dict[str, int]]:
        out = (dict(self.totals), dict(self.calls))
        self.totals.clear()
        self.calls.clear()
        return out


def build_trl_trainer(s: Settings, assets: Assets, reward: Any, workdir: Path, callbacks: list[Any]) -> Any:
    from datasets import Dataset
    from trl import GRPOTrainer

    from mssr.models import load_policy
    from mssr.models.chat import DEFAULT_INSTRUCTION

    records = assets.records
    columns = [r.to_columns() for r in records]

    def accuracy(prompts: list, completions: list, row: list[int], **_: Any) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [float(reward(t, columns[i])) for t, i in zip(texts, row, strict=True)]

    ds = Dataset.from_list(
        [
            {"prompt": _trl_messages(r.question, DEFAULT_INSTRUCTION), "image": r.images[0], "row": i}
            for i, r in enumerate(records)
        ]
    )
    policy = load_policy(assets.policy_dir)
    return GRPOTrainer(
        model=policy.model,
        reward_funcs=[accuracy],
        args=trl_config(s, workdir / "trl"),
        train_dataset=ds,
        processing_class=policy.processor,
        callbacks=callbacks,
    )


# --------------------------------------------------------------------------- the interleaved run
def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _set_threads(n: int) -> None:
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def run_benchmark(
    s: Settings, workdir: Path, *, profile: bool = False, log: Callable[[str], None] = print
) -> dict:
    """Build every arm, run them interleaved, return the results (also what ``--json`` writes).

    ``profile``: cProfile mssr grpo's and TRL's measured steps (this inflates their times; take timings from
    a run without it)."""
    import torch

    s.validate()
    _set_threads(s.threads)
    t_start = time.perf_counter()
    assets = build_assets(s, workdir)
    log(
        f"prompt pool: {len(assets.records)} prompts of {assets.prompt_tokens} tokens (mssr); TRL templating "
        f"gives {assets.trl_prompt_tokens} tokens, identical ids: {assets.prompt_text_equal}"
    )
    reward = make_reward()
    mssr_names = [a for a in s.arms if a != "trl_grpo"]
    arms: dict[str, MssrArm] = {}
    results: dict[str, ArmResult] = {}
    for name in mssr_names:
        _set_threads(s.threads)
        try:
            arms[name] = MssrArm(name, s, assets, reward, workdir)
            results[name] = arms[name].result
        except Exception as e:  # e.g. grpo with --group 1: mssr's own message
            results[name] = ArmResult(name, LABELS[name], s.rollouts, 0, error=_describe(e))
            log(f"{LABELS[name]} failed: {results[name].error}")
    live = [n for n in mssr_names if n in arms]
    profiler = cProfile.Profile() if profile and "mssr_grpo" in arms else None
    trl_profiler = cProfile.Profile() if profile and "trl_grpo" in s.arms else None
    rounds_done = 0

    def run_mssr_round() -> None:
        nonlocal rounds_done
        for name in rotation(list(live), rounds_done):
            _set_threads(s.threads)
            measured = arms[name].step_index >= s.warmup
            try:
                arms[name].step(profiler if name == "mssr_grpo" and measured else None)
            except Exception as e:  # recorded on that arm, never blamed on the TRL loop it runs inside
                if profiler is not None:
                    profiler.disable()
                results[name].error = _describe(e)
                live.remove(name)
                log(f"{LABELS[name]} failed at step {arms[name].step_index}: {results[name].error}")
        rounds_done += 1

    total = s.warmup + s.steps
    if "trl_grpo" in s.arms:
        trl = ArmResult("trl_grpo", LABELS["trl_grpo"], s.rollouts, s.prompts)
        results["trl_grpo"] = trl
        try:
            _run_trl_interleaved(s, assets, reward, workdir, trl, run_mssr_round, trl_profiler)
        except Exception as e:  # TRL refused or crashed: say exactly why, keep the mssr arms going
            import traceback

            trl.error = _describe(e)
            trl.notes["traceback"] = traceback.format_exc(limit=6)
            log(f"TRL GRPOTrainer failed: {trl.error}")
    while rounds_done < total and live:
        run_mssr_round()

    out = {
        "settings": {**asdict(s), "rollouts_per_step": s.rollouts, "micro_batch": s.micro},
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "loadavg_end": os.getloadavg(),
        },
        "prompt": {
            "pool": len(assets.records),
            "mssr_tokens": assets.prompt_tokens,
            "trl_tokens": assets.trl_prompt_tokens,
            "identical_ids": assets.prompt_text_equal,
        },
        "arms": {k: {**v.summary(), **asdict(v)} for k, v in results.items()},
        "wall_s": time.perf_counter() - t_start,
    }
    try:
        import trl as _trl

        out["machine"]["trl"] = _trl.__version__
    except ImportError:
        out["machine"]["trl"] = None
    if "trl_grpo" in results and "mssr_grpo" in results:
        out["ratio_mssr_grpo_over_trl"] = ratio(results["mssr_grpo"], results["trl_grpo"])
        out["ratio_mssr_grpo_over_trl_mean"] = ratio(results["mssr_grpo"], results["trl_grpo"], "per_1k_mean")
        out["ratio_mssr_grpo_over_trl_cpu"] = ratio(
            results["mssr_grpo"], results["trl_grpo"], "cpu_per_1k_median"
        )
    if "mssr_mssr" in results and "mssr_grpo_kl" in results:
        out["ratio_mssr_over_grpo"] = ratio(results["mssr_mssr"], results["mssr_grpo_kl"])
        out["ratio_mssr_over_grpo_cpu"] = ratio(
            results["mssr_mssr"], results["mssr_grpo_kl"], "cpu_per_1k_median"
        )
    if profiler is not None:
        out["profile"] = profile_report(profiler)
    if trl_profiler is not None and results["trl_grpo"].step_s:
        out["profile_trl"] = profile_report(trl_profiler)
    out["_results"] = results
    return out


def _run_trl_interleaved(
    s: Settings,
    assets: Assets,
    reward: Any,
    workdir: Path,
    res: ArmResult,
    between_steps: Callable[[], None],
    profiler: cProfile.Profile | None = None,
) -> None:
    """TRL's own ``train()`` loop; the other arms run inside its step-end callback, outside its timing."""
    from transformers import TrainerCallback

    timer = _StageTimer()
    state: dict[str, Any] = {}

    class Interleave(TrainerCallback):
        def on_train_begin(self, args, st, control, **kw):  # type: ignore[no-untyped-def]
            timer.take()
            state["t"], state["c"] = time.perf_counter(), time.process_time()

        def on_step_end(self, args, st, control, **kw):  # type: ignore[no-untyped-def]
            dt, dc = time.perf_counter() - state["t"], time.process_time() - state["c"]
            if profiler is not None and st.global_step > s.warmup:
                profiler.disable()
            stages, calls = timer.take()
            if st.global_step <= s.warmup:
                res.warmup_s.append(dt)
            else:
                res.step_s.append(dt)
                res.cpu_s.append(dc)
                gen, score = stages.get("gen", 0.0), stages.get("score", 0.0)
                prep = stages.get("prepare", 0.0)
                for k, v in (
                    ("gen", gen),
                    ("score", score),
                    ("prepare_other", max(0.0, prep - gen - score)),
                    ("update", max(0.0, dt - prep)),
                ):
                    res.stages.setdefault(k, []).append(v)
                lengths = state.get("lengths", [])
                if lengths:
                    res.response_length.append(statistics.fmean(lengths))
                res.updates_per_step.append(1.0)
            res.notes.setdefault("generate_calls_per_step", []).append(calls.get("gen", 0))
            state["lengths"] = []
            between_steps()
            _set_threads(s.threads)
            if profiler is not None and st.global_step >= s.warmup:
                profiler.enable()
            state["t"], state["c"] = time.perf_counter(), time.process_time()

    trainer = build_trl_trainer(s, assets, reward, workdir, [Interleave()])
    timer.wrap(trainer, "_generate", "gen")
    timer.wrap(trainer, "_calculate_rewards", "score")
    timer.wrap(trainer, "_generate_and_score_completions", "prepare")
    original = trainer._calculate_rewards

    def record_lengths(inputs, prompts, completions, completion_ids_list):  # type: ignore[no-untyped-def]
        state.setdefault("lengths", []).extend(len(c) for c in completion_ids_list)
        return original(inputs, prompts, completions, completion_ids_list)

    trainer._calculate_rewards = record_lengths
    res.notes["trl_args"] = {
        k: getattr(trainer.args, k)
        for k in (
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "steps_per_generation",
            "generation_batch_size",
            "num_generations",
            "beta",
            "top_k",
            "gradient_checkpointing",
            "bf16",
        )
    }
    _set_threads(s.threads)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):  # Trainer prints its end-of-training metrics dict
            trainer.train()
    finally:
        if profiler is not None:
            profiler.disable()
    res.notes["trl_stdout"] = buf.getvalue()[-2000:]


def profile_report(profiler: cProfile.Profile, top: int = 30) -> str:
    """The top functions by cumulative time, then by own time."""
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top // 2)
    return buf.getvalue()


# --------------------------------------------------------------------------- levers (what-if measurements)
def _cpu_median(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """``(median CPU s, median wall s, last result)`` of ``repeats`` calls."""
    cpu, wall, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(cpu), statistics.median(wall), out


def measure_levers(s: Settings, assets: Assets, repeats: int = 3) -> dict[str, float]:
    """CPU seconds of the model passes of one ``grpo`` step with and without the three savings mssr
    makes (docs/benchmarks.md): (1) the sampler's log-probs as old log-probs instead of a teacher-forced
    pass, (2) each prompt prefilled once per group in generation, (3) each prompt run once per group in
    the teacher-forced forward+backward — (2) and (3) are ``rollout.share_prompts``."""
    import torch

    from mssr.models import load_policy
    from mssr.rollout.engine import HFRolloutEngine, default_suppress_token_ids
    from mssr.rollout.logprobs import compute_logprobs
    from mssr.rollout.prompting import records_to_prompts

    _set_threads(s.threads)
    policy = load_policy(assets.policy_dir)
    model = policy.model.train()
    suppress = default_suppress_token_ids(model, policy.processor)
    engines = {
        share: HFRolloutEngine(model, policy.processor, suppress_token_ids=suppress, share_prompts=share)
        for share in (False, True)
    }
    prompts = records_to_prompts(assets.records[: s.prompts], policy.processor)
    kw = dict(n=s.group, max_new_tokens=s.max_new_tokens, top_k=0, seed=1, return_logprobs=True)
    r: dict[str, float] = {}
    batches = {}
    for share, tag in ((False, "rows"), (True, "shared")):
        r[f"gen_{tag}_cpu"], r[f"gen_{tag}_wall"], batches[share] = _cpu_median(
            lambda share=share: engines[share].generate(prompts, **kw), repeats
        )
    batch = batches[False]
    lps = {}
    with torch.no_grad():
        for share, tag in ((False, "rows"), (True, "shared")):
            r[f"old_logprob_{tag}_cpu"], _, lps[share] = _cpu_median(
                lambda share=share: (
                    compute_logprobs(model, batch, micro_batch_size=s.micro, share_prompts=share).logprobs
                ),
                repeats,
            )
    m = batch.response_mask > 0
    r["sampler_vs_teacher_forced_max_abs"] = float((lps[False] - batch.rollout_logprobs)[m].abs().max())
    r["shared_vs_rows_logprob_max_abs"] = float((lps[True] - lps[False])[m].abs().max())

    def fwd_bwd(share: bool) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        for start in range(0, len(batch), s.micro):
            mb = batch.select(list(range(start, min(start + s.micro, len(batch)))))
            lp_mb = compute_logprobs(model, mb, requires_grad=True, share_prompts=share).logprobs
            (lp_mb * mb.response_mask[:, : lp_mb.shape[1]]).sum().backward()
        return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]

    r["fwd_bwd_rows_cpu"], _, g_rows = _cpu_median(lambda: fwd_bwd(False), repeats)
    r["fwd_bwd_shared_cpu"], _, g_shared = _cpu_median(lambda: fwd_bwd(True), repeats)
    r["shared_grad_max_rel_diff"] = max(
        float((a - b).norm() / (a.norm() + 1e-12)) for a, b in zip(g_rows, g_shared, strict=True)
    )
    r["step_none_cpu"] = r["gen_rows_cpu"] + r["old_logprob_rows_cpu"] + r["fwd_bwd_rows_cpu"]
    r["step_1_cpu"] = r["gen_rows_cpu"] + r["fwd_bwd_rows_cpu"]
    r["step_1_2_cpu"] = r["gen_shared_cpu"] + r["fwd_bwd_rows_cpu"]
    r["step_1_2_3_cpu"] = r["gen_shared_cpu"] + r["fwd_bwd_shared_cpu"]
    return r


def format_levers(r: dict[str, float], s: Settings) -> str:
    def x(key: str) -> str:
        return f"{r[key]:.2f} s = {r[key] / r['step_none_cpu']:.2f} x"

    return "\n".join(
        [
            f"model passes of one grpo step ({s.prompts} prompts x {s.group}, {s.max_new_tokens} new tokens), "
            "median CPU seconds, every row / each prompt once per group:",
            f"  generation {r['gen_rows_cpu']:.2f} / {r['gen_shared_cpu']:.2f} | old-log-prob pass "
            f"{r['old_logprob_rows_cpu']:.2f} / {r['old_logprob_shared_cpu']:.2f} | training forward+backward "
            f"{r['fwd_bwd_rows_cpu']:.2f} / {r['fwd_bwd_shared_cpu']:.2f}",
            f"  agreement: sampler vs teacher-forced log-probs {r['sampler_vs_teacher_forced_max_abs']:.1e} max abs; "
            f"shared vs per-row log-probs {r['shared_vs_rows_logprob_max_abs']:.1e}; gradients "
            f"{r['shared_grad_max_rel_diff']:.1e} rel",
            f"  step with none of the savings {r['step_none_cpu']:.2f} s; (1) sampler log-probs {x('step_1_cpu')}; "
            f"(1)+(2) {x('step_1_2_cpu')}; (1)+(2)+(3) = mssr as shipped {x('step_1_2_3_cpu')}",
        ]
    )


# --------------------------------------------------------------------------- CLI
def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny", help="tiny (~1M) | small (~5M) | base (~20M)")
    p.add_argument("--steps", type=int, default=4, help="measured steps per arm (after --warmup)")
    p.add_argument("--warmup", type=int, default=1, help="excluded steps per arm")
    p.add_argument("--prompts", type=int, default=8, help="prompts per step of the group arms")
    p.add_argument("--group", type=int, default=8, help="rollouts per prompt of the group arms")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument(
        "--micro-batch", type=int, default=None, help="responses per forward/backward (default min(P*G, 32))"
    )
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads, the same for every arm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {', '.join(ARMS)}")
    p.add_argument("--quick", action="store_true", help="a few seconds' run (the smoke test's size)")
    p.add_argument(
        "--profile", action="store_true", help="cProfile mssr grpo's measured steps, print the top"
    )
    p.add_argument(
        "--levers",
        action="store_true",
        help="instead of the comparison: CPU cost of a grpo step's stages and of three cheaper variants",
    )
    p.add_argument("--json", type=Path, default=None, help="write all results here")
    p.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory, removed after")
    a = p.parse_args(argv)
    s = Settings(
        preset=a.preset,
        prompts=a.prompts,
        group=a.group,
        max_new_tokens=a.max_new_tokens,
        steps=a.steps,
        warmup=a.warmup,
        micro_batch=a.micro_batch,
        lr=a.lr,
        threads=a.threads,
        seed=a.seed,
        arms=tuple(x.strip() for x in a.arms.split(",") if x.strip()),
    )
    if a.quick:
        for k, v in QUICK.items():
            setattr(s, k, v)
    return s, a


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="mssr-bench-") as d:
        yield Path(d)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' gradient_checkpointing rename
    s, a = parse_args(argv)
    try:
        s.validate()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"preset={s.preset} prompts={s.prompts} group={s.group} rollouts/step={s.rollouts} "
        f"max_new_tokens={s.max_new_tokens} micro_batch={s.micro} steps={s.steps} (+{s.warmup} warm-up) "
        f"threads={s.threads} cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}"
    )
    if a.levers:
        with _workdir(a.workdir) as wd:
            levers = measure_levers(s, build_assets(s, wd, check_trl=False))
        print(format_levers(levers, s))
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps({"settings": asdict(s), "levers": levers}, indent=2) + "\n")
        return 0
    with _workdir(a.workdir) as wd:
        out = run_benchmark(s, wd, profile=a.profile)
    results: dict[str, ArmResult] = out.pop("_results")
    print()
    print(format_table(results))
    for r in results.values():
        if r.error:
            print(f"  {r.label} failed: {r.error}")
    print()
    print(format_stages(results))
    for r in results.values():
        if "tracker_init_s" in r.notes:
            print(
                f"  {r.label}: tracker initialisation (one-off, not in the table): "
                f"{r.notes['tracker_init_rollouts']:.0f} rollouts in {r.notes['tracker_init_s']:.2f} s"
            )
    print()
    if out.get("ratio_mssr_grpo_over_trl") is not None:
        print(
            f"ours/TRL per 1,000 rollouts (mssr grpo kl=0 / TRL beta=0): {out['ratio_mssr_grpo_over_trl']:.2f} "
            f"(medians; means: {out['ratio_mssr_grpo_over_trl_mean']:.2f}; CPU time: "
            f"{out['ratio_mssr_grpo_over_trl_cpu']:.2f}); goal <= 0.5"
        )
    elif "trl_grpo" in results and "mssr_grpo" in results:
        why = [f"{r.label}: {r.error}" for r in (results["trl_grpo"], results["mssr_grpo"]) if r.error]
        print(f"no ours/TRL ratio: {'; '.join(why) or 'no measured step'}")
    if out.get("ratio_mssr_over_grpo") is not None:
        print(
            f"mssr/grpo per 1,000 rollouts (both presets, equal rollouts): {out['ratio_mssr_over_grpo']:.2f} "
            f"(CPU time: {out['ratio_mssr_over_grpo_cpu']:.2f})"
        )
    print(f"wall time {out['wall_s']:.1f} s, load average at the end {os.getloadavg()[0]:.2f}")
    if "profile" in out:
        print("\ncProfile of mssr grpo's measured steps (cumulative):")
        print(out["profile"])
    if "profile_trl" in out:
        print("\ncProfile of TRL's measured steps (cumulative):")
        print(out["profile_trl"])
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

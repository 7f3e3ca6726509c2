"""Supervised warm start: teach a freshly built tiny policy the answer format and some competence.

A tiny model never writes ``\\boxed{}`` by chance (docs/platform.md "Making a tiny model learn in minutes"), so
RL starts from a base obtained by supervised fine-tuning on the built-in task's worked solutions
(``<think>…</think> \\boxed{answer}``, then ``<|im_end|>``). The loss is the token-mean cross-entropy over
response tokens only. Training stops at ``max_steps`` or, with ``stop_accuracy``, at the first check where
the *sampled* (T = 1, top-k off, top-p 1) accuracy on a held-out dev slice reaches it, so that the base
sits in a band that leaves RL room to improve (25–60 %).

The result is cached under ``cache_dir/sft/<preset>-<hash of the config>``: a policy directory
(:func:`mssr.models.load_policy` reads it), ``sft_config.json``, ``loss_log.jsonl`` and ``metrics.json``.
The SFT data is its own item stream (data seed 1 by default), disjoint from the default RL dataset's seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mssr.io import cache_root, read_json, write_dir_atomic
from mssr.models import DEFAULT_INSTRUCTION, Policy, build_prompt, build_tiny_policy

SFT_VERSION = 1  # bump when a change alters what a config trains; part of the cache key
DONE_FILE = "metrics.json"


# the cache root ($MSSR_CACHE or ~/.cache/mssr); the old name stays importable
default_cache_dir = cache_root


@dataclass
class SFTConfig:
    """Everything that determines the SFT base policy (all of it but the run-time fields is hashed)."""

    preset: str = "tiny"
    data: dict[str, Any] = field(
        # the CPU main job's task: one large shape, colour of it, free-form answers. The tiny preset learns this
        # in ~100 steps; the four multi-step families and multiple-choice letters stayed at chance for 700
        # SFT steps (docs/models.md), so they are not the default warm start.
        default_factory=lambda: {
            "seed": 1,
            "n_train": 2000,
            "n_val": 200,
            "n_test": 0,
            "families": ["shapes"],
            "difficulty": "easy",
            "mc_fraction": 0.0,
        }
    )
    data_dir: str | None = None  # use this dataset directory instead of generating from ``data``
    instruction: str | None = DEFAULT_INSTRUCTION
    init_seed: int = 0  # model initialisation
    seed: int = 0  # data order and evaluation sampling
    max_steps: int = 3000
    batch_size: int = 16
    lr: float = 5e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 30
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    stop_accuracy: float | None = 0.30  # stop at the first dev check with sampled accuracy >= this
    eval_every: int = 10  # the tiny preset crosses the band within ~10-20 steps on the default task
    n_dev: int = 100  # dev slice for the stop check: the SFT dataset's val split (never trained on)
    n_test_eval: int = 200  # reported accuracy: the SFT dataset's test split (not used for any choice)
    eval_max_new_tokens: int = 64
    eval_batch_size: int = 64
    # run-time only (not part of the cache key)
    cache_dir: str | None = None
    out: str | None = None  # write here instead of the cache
    threads: int | None = None
    progress: bool = True

    RUNTIME_FIELDS = ("cache_dir", "out", "threads", "progress")

    def key_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in self.RUNTIME_FIELDS}
        d["sft_version"] = SFT_VERSION
        if self.data_dir is None:
            from mssr.data.builtin import config_key

            d["data_key"] = config_key(**self.data)
        return d

    def cache_key(self) -> str:
        blob = json.dumps(self.key_dict(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def output_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        root = Path(self.cache_dir) if self.cache_dir else default_cache_dir()
        return root / "sft" / f"{self.preset}-{self.cache_key()}"


# ---------------------------------------------------------------------------------------------- data


@dataclass
class Example:
    """One tokenised training example: prompt (with expanded image tokens) + response ids."""

    input_ids: list[int]
    n_prompt: int
    mm_token_type_ids: list[int]
    pixel_values: torch.Tensor
    image_grid_thw: torch.Tensor


def response_text(record: Any) -> str:
    """The supervised response: the record's worked solution (``extra["solution"]``)."""
    solution = record.extra.get("solution")
    if not solution:
        raise ValueError(f"record {record.id}: no worked solution in extra['solution']; SFT needs one")
    return str(solution)


def encode_example(policy: Policy, record: Any, instruction: str | None) -> Example:
    """Prompt through the processor (so image tokens are expanded exactly as at rollout time), then the
    response tokens and ``<|im_end|>`` appended as ids — the same layout the RL trainer scores."""
    return encode_examples(policy, [record], instruction)[0]


def encode_examples(
    policy: Policy, records: Sequence[Any], instruction: str | None, chunk: int = 64
) -> list[Example]:
    """:func:`encode_example` for many records, calling the processor on chunks (much faster)."""
    proc, tok = policy.processor, policy.tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    merge = proc.image_processor.merge_size
    out: list[Example] = []
    for start in range(0, len(records), chunk):
        recs = records[start : start + chunk]
        prompts = [build_prompt(proc, r.question, len(r.images), instruction) for r in recs]
        images = [img for r in recs for img in r.images]
        enc = proc(text=prompts, images=images or None, padding=False)
        responses = tok([response_text(r) for r in recs], add_special_tokens=False)["input_ids"]
        grids = torch.as_tensor(enc["image_grid_thw"]) if images else torch.empty(0, 3, dtype=torch.long)
        pixels = torch.as_tensor(enc["pixel_values"]) if images else torch.empty(0)
        patches = grids.prod(-1).tolist()
        img_i = patch_i = 0
        for r, ids, mm, resp in zip(recs, enc["input_ids"], enc["mm_token_type_ids"], responses):
            k = len(r.images)
            n_patch = sum(patches[img_i : img_i + k])
            grid = grids[img_i : img_i + k]
            if sum(mm) != n_patch // (merge * merge):
                raise AssertionError(f"record {r.id}: image tokens do not match the image grid")
            resp = [*resp, im_end]
            out.append(
                Example(
                    input_ids=list(ids) + resp,
                    n_prompt=len(ids),
                    mm_token_type_ids=list(mm) + [0] * len(resp),
                    pixel_values=pixels[patch_i : patch_i + n_patch] if k else torch.empty(0),
                    image_grid_thw=grid if k else torch.empty(0, 3, dtype=torch.long),
                )
            )
            img_i += k
            patch_i += n_patch
    return out


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch with ``labels`` = -100 outside the response."""
    width = max(len(e.input_ids) for e in examples)
    n = len(examples)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    mm = torch.zeros((n, width), dtype=torch.long)
    labels = torch.full((n, width), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        L = len(e.input_ids)
        input_ids[i, :L] = torch.tensor(e.input_ids)
        attention[i, :L] = 1
        mm[i, :L] = torch.tensor(e.mm_token_type_ids)
        labels[i, e.n_prompt : L] = input_ids[i, e.n_prompt : L]
    batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "mm_token_type_ids": mm}
    pv = [e.pixel_values for e in examples if e.pixel_values.numel()]
    if pv:
        batch["pixel_values"] = torch.cat(pv)
        batch["image_grid_thw"] = torch.cat([e.image_grid_thw for e in examples if e.image_grid_thw.numel()])
    return batch


def response_nll(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Token-mean negative log-likelihood of the response tokens, and how many there were."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits[:, :-1]
    target = labels[:, 1:]
    mask = target != -100
    n = int(mask.sum())
    loss = F.cross_entropy(logits[mask].float(), target[mask], reduction="mean")
    return loss, n


# ------------------------------------------------------------------------------------------ evaluation


def last_boxed(text: str) -> tuple[str, int] | None:
    """Content of the last ``\\boxed{...}`` (balanced braces) and the index just past it."""
    start = text.rfind("\\boxed{")
    while start != -1:
        i = start + len("\\boxed{")
        depth = 1
        j = i
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth == 0:
            return text[i : j - 1], j
        start = text.rfind("\\boxed{", 0, start)
    return None


def strict_boxed_match(response: str, answer: str) -> bool:
    """Local verifier used until :mod:`mssr.rewards` lands: the last ``\\boxed{}`` equals the answer
    (whitespace-trimmed, case-insensitive) and nothing but whitespace follows it."""
    found = last_boxed(response)
    if found is None:
        return False
    content, end = found
    return content.strip().lower() == str(answer).strip().lower() and not response[end:].strip()


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
) -> dict[str, float]:
    """Sampled accuracy (T = ``temperature``, top-k 0, top-p 1, vision tokens suppressed, stop at
    ``<|im_end|>``) with the strict local verifier, plus the mean over response tokens (eos included) of the
    sampled-token entropy −p log p and of the full-vocabulary entropy of the distribution sampled from."""
    model, proc, tok = policy.model, policy.processor, policy.tokenizer
    was_training = model.training
    model.eval()
    eos = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    pad = tok.convert_tokens_to_ids("<|endoftext|>")
    correct = formatted = ended = 0
    by_family: dict[str, list[int]] = {}
    n_tok = 0
    sum_sampled = sum_full = 0.0
    lengths: list[int] = []
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        prompts = [build_prompt(proc, r.question, len(r.images), instruction) for r in chunk]
        images = [img for r in chunk for img in r.images] or None
        tok.padding_side = "left"
        batch = proc(text=prompts, images=images, padding=True, return_tensors="pt")
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        out = model.generate(
            **batch,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            suppress_tokens=policy.vision_token_ids(),
            eos_token_id=eos,
            pad_token_id=pad,
            output_scores=True,
            return_dict_in_generate=True,
        )
        new = out.sequences[:, batch["input_ids"].shape[1] :]
        scores = torch.stack(out.scores, dim=1).float()  # B × T × V, the processed (sampled-from) logits
        logp = torch.log_softmax(scores, dim=-1)
        p = logp.exp()
        full = -(p * torch.nan_to_num(logp, neginf=0.0)).sum(-1)  # B × T
        lp_sampled = logp.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        sampled = -(lp_sampled.exp() * lp_sampled)
        for i, r in enumerate(chunk):
            ids = new[i].tolist()
            stop = next((j for j, t in enumerate(ids) if t in eos), None)
            length = len(ids) if stop is None else stop + 1
            lengths.append(length)
            text = tok.decode(ids[: stop if stop is not None else len(ids)], skip_special_tokens=False)
            ok_end = stop is not None
            ended += ok_end
            formatted += ok_end and "</think>" in text and last_boxed(text) is not None
            hit = ok_end and strict_boxed_match(text, r.answer)
            correct += hit
            by_family.setdefault(str(r.extra.get("family", "all")), [0, 0])[0] += hit
            by_family[str(r.extra.get("family", "all"))][1] += 1
            n_tok += length
            sum_sampled += float(sampled[i, :length].sum())
            sum_full += float(full[i, :length].sum())
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
        "verifier": "local strict last-boxed exact match",
    }


# -------------------------------------------------------------------------------------------- training


def _lr_at(step: int, cfg: SFTConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = (step - cfg.warmup_steps) / max(cfg.max_steps - cfg.warmup_steps, 1)
    return cfg.lr * (
        cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
    )


def _load_data(cfg: SFTConfig, cache_root: Path):
    """Train split (trained on), dev = first ``n_dev`` of val (stop checks), test split (the reported
    accuracy: never trained on nor used to choose when to stop; empty if the dataset has none)."""
    from mssr.data import DataError, load_records

    if cfg.data_dir is not None:
        data_dir = Path(cfg.data_dir)
    else:
        from mssr.data.builtin import ensure_dataset

        data_dir = ensure_dataset(cache_root / "data", **cfg.data)
    train = load_records(data_dir, "train")
    dev = load_records(data_dir, "val")[: cfg.n_dev] if cfg.n_dev > 0 else []
    try:
        test = load_records(data_dir, "test")[: cfg.n_test_eval] if cfg.n_test_eval > 0 else []
    except DataError:
        test = []
    return data_dir, train, dev, test


def _tokenizer_corpus(cfg: SFTConfig, train: Sequence[Any]) -> list[str] | None:
    """The built-in corpus when training on the built-in task; otherwise the dataset's own texts."""
    if cfg.data_dir is None:
        return None  # build_tiny_policy's default: mssr.data.builtin.corpus_texts()
    return [r.question for r in train] + [response_text(r) for r in train]


def _evaluate(policy: Policy, records: Sequence[Any], cfg: SFTConfig, *, seed: int) -> dict[str, Any]:
    return evaluate_sampled(
        policy,
        records,
        instruction=cfg.instruction,
        seed=seed,
        max_new_tokens=cfg.eval_max_new_tokens,
        batch_size=cfg.eval_batch_size,
    )


def train_sft(cfg: SFTConfig, out_dir: Path) -> dict[str, Any]:
    """Train and write the policy plus logs into ``out_dir`` (which must not hold a finished run)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cache_root = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    t0 = time.perf_counter()
    data_dir, train, dev, test = _load_data(cfg, cache_root)
    if not train:
        raise ValueError(f"{data_dir}: the train split is empty")
    policy = build_tiny_policy(
        cfg.preset,
        tokenizer_corpus=_tokenizer_corpus(cfg, train),
        image_size=int(cfg.data.get("image_size", 64)) if cfg.data_dir is None else 64,
        seed=cfg.init_seed,
    )
    examples = encode_examples(policy, train, cfg.instruction)
    pad_id = policy.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model = policy.model
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    order: list[int] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "loss_log.jsonl"
    checks: list[dict[str, Any]] = []
    stopped_at = cfg.max_steps
    prep_s = time.perf_counter() - t0
    with log_path.open("w", encoding="utf-8") as log, _progress(cfg.progress) as bar:
        task = bar.add_task(f"SFT {cfg.preset}", total=cfg.max_steps, info="")
        for step in range(cfg.max_steps):
            if len(order) < cfg.batch_size:
                order.extend(torch.randperm(len(examples), generator=gen).tolist())
            idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
            batch = collate([examples[i] for i in idx], pad_id)
            lr = _lr_at(step, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            loss, n_tokens = response_nll(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
            opt.step()
            rec = {
                "step": step + 1,
                "loss": loss.item(),
                "lr": lr,
                "grad_norm": grad_norm,
                "tokens": n_tokens,
                "elapsed_s": round(time.perf_counter() - t0, 3),
            }
            log.write(json.dumps(rec) + "\n")
            if (step + 1) % 10 == 0:
                log.flush()
            bar.update(task, advance=1, info=f"loss {rec['loss']:.3f}")
            if dev and cfg.eval_every and (step + 1) % cfg.eval_every == 0:
                m = _evaluate(policy, dev, cfg, seed=cfg.seed + step + 1)
                m = {"step": step + 1, "elapsed_s": round(time.perf_counter() - t0, 3), **m}
                checks.append(m)
                log.write(json.dumps({"eval": m}) + "\n")
                log.flush()
                bar.update(task, info=f"loss {rec['loss']:.3f} dev acc {m['accuracy']:.2f}")
                if cfg.stop_accuracy is not None and m["accuracy"] >= cfg.stop_accuracy:
                    stopped_at = step + 1
                    break
    train_s = time.perf_counter() - t0
    model.eval()
    policy.info.update({"sft": {"steps": stopped_at, "cache_key": cfg.cache_key()}})
    policy.save(out_dir / "policy")
    final = checks[-1] if checks and checks[-1]["step"] == stopped_at else None
    if final is None and dev:
        final = {"step": stopped_at, **_evaluate(policy, dev, cfg, seed=cfg.seed + stopped_at)}
    report = _evaluate(policy, test, cfg, seed=cfg.seed + 10**6) if test else None
    return {
        "steps": stopped_at,
        "stopped_early": stopped_at < cfg.max_steps,
        "wall_s": round(time.perf_counter() - t0, 2),
        "train_s": round(train_s, 2),
        "prep_s": round(prep_s, 2),
        "threads": torch.get_num_threads(),
        "n_train": len(train),
        "n_dev": len(dev),
        "n_test": len(test),
        "data_dir": str(data_dir),
        "num_parameters": policy.num_parameters(),
        "dev": final,
        "test": report,
        "checks": checks,
    }


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass


def _progress(enabled: bool):
    if not enabled:
        return _NoBar()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
    )


def run_sft(cfg: SFTConfig, *, force: bool = False) -> Path:
    """Train the SFT base policy for ``cfg`` unless its cached result exists; return the run directory.

    The policy is at ``<dir>/policy``; ``<dir>/metrics.json`` (written last) marks a finished run.
    Training happens in a temporary sibling directory renamed into place, so concurrent callers never see a
    half-written run.
    """
    final = cfg.output_dir()
    if (final / DONE_FILE).is_file() and not force:
        return final

    def build(tmp: Path) -> None:
        metrics = train_sft(cfg, tmp)
        (tmp / "sft_config.json").write_text(
            json.dumps(
                {**cfg.key_dict(), "cache_key": cfg.cache_key()}, indent=2, sort_keys=True, default=str
            )
            + "\n"
        )
        (tmp / DONE_FILE).write_text(json.dumps(metrics, indent=2, default=str) + "\n")

    # a forced retrain, or a directory that is not a finished run, is replaced; if another process finished
    # the same config first, its run is kept
    write_dir_atomic(final, build, complete=lambda d: (d / DONE_FILE).is_file(), force=force)
    return final


def ensure_base_policy(cfg: SFTConfig) -> Path:
    """The policy directory of the cached SFT base for ``cfg`` (trained on first use)."""
    return run_sft(cfg) / "policy"


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    return read_json(Path(run_dir) / DONE_FILE, what="SFT metrics")

"""Build what a :class:`TrainConfig` names: the starting policy and the train/validation records."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import torch

from mssr.config import ConfigError
from mssr.data import Columns, DataError, load_records
from mssr.data.sources import has_split, load_source, without_split
from mssr.io import cache_root
from mssr.models import build_tiny_policy, load_policy
from mssr.models.lora import apply_lora, freeze_vision
from mssr.rollout.prompting import records_to_prompts
from mssr.trainer.config import TrainConfig


def cache_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.data.cache_dir) if cfg.data.cache_dir else cache_root()


def sft_config(cfg: TrainConfig) -> Any:
    """The SFT warm-start config of the built-in preset (its data config is also the RL task's)."""
    from mssr.sft import SFTConfig

    sft = SFTConfig(preset=cfg.model.preset, progress=cfg.logging.progress)
    if cfg.data.cache_dir:
        sft.cache_dir = cfg.data.cache_dir
    return sft


def builtin_task(cfg: TrainConfig) -> dict[str, Any]:
    """The RL task of the built-in job: the SFT base's task family mix, drawn from its own seed (0; the SFT
    base trained on seed-1 items), with validation and test splits."""
    return {**sft_config(cfg).data, "seed": 0, "n_train": 1000, "n_val": 200, "n_test": 200}


def builtin_root(cfg: TrainConfig) -> Path:
    """The built-in task's dataset directory for ``cfg`` (generated on first use): the one training pins in its
    ``config.yaml`` and evaluation reads when a config has nothing pinned."""
    from mssr.data.builtin import ensure_dataset

    return ensure_dataset(cache_dir(cfg) / "data", **{**builtin_task(cfg), **cfg.data.builtin})


def build_policy(cfg: TrainConfig) -> tuple[Any, str]:
    """``model.path`` → load it; else the built-in preset, warm-started by the cached SFT base."""
    m = cfg.model
    if m.path:
        return load_policy(m.path, min_pixels=m.min_pixels, max_pixels=m.max_pixels), m.path
    if m.warm_start:
        from mssr.sft import ensure_base_policy

        path = ensure_base_policy(sft_config(cfg))
        return load_policy(path, min_pixels=m.min_pixels, max_pixels=m.max_pixels), str(path)
    return build_tiny_policy(m.preset, seed=cfg.seed), f"scratch:{m.preset}"


def data_columns(cfg: TrainConfig) -> Columns:
    """The column mapping ``data.prompt_key`` / ``answer_key`` / ``image_key`` / ``choices_key`` name."""
    d = cfg.data
    return Columns.with_keys(
        prompt_key=d.prompt_key, answer_key=d.answer_key, image_key=d.image_key, choices_key=d.choices_key
    )


def load_data(
    cfg: TrainConfig, source: Any, split: str | None, *, limit: int | None = None, label: str | None = None
) -> list[Any]:
    """One split of ``source`` (a path or hub id as ``data.train`` takes, or an in-memory dataset), read with
    the config's column mapping and ``data.on_error``; a source whose every row is rejected is an error."""
    try:
        recs = load_source(
            source, split, columns=data_columns(cfg), on_error=cfg.data.on_error, limit=limit, label=label
        )
    except DataError as exc:
        if cfg.data.on_error != "raise" or not re.search(r": (line|row|item|key) ", str(exc)):
            raise
        how = f"; `mssr data inspect {source}` lists every one" if isinstance(source, str) else ""
        raise DataError(f"{exc} (data.on_error=skip drops bad rows and counts them{how})") from exc
    if not recs and recs.skipped:
        raise DataError(
            f"all {len(recs.skipped)} rows of {label or source} were rejected; first: {recs.skipped[0]}"
        )
    return list(recs)


def build_data(cfg: TrainConfig) -> tuple[list[Any], list[Any]]:
    """Training and validation records: ``data.train``/``data.val`` (files, save_to_disk directories, hub ids),
    or the built-in task."""
    d = cfg.data
    if d.train:
        train = load_data(cfg, d.train, d.train_split, limit=d.max_train_items)
        val: list[Any] = []
        if d.val:
            val = load_data(cfg, d.val, d.val_split)
        elif has_split(d.train, d.val_split):  # the val split beside data.train's (DIR@train -> DIR's val)
            val = load_data(cfg, without_split(d.train), d.val_split)
        return train, val
    root = builtin_root(cfg)
    # pin the resolved dataset in the run's config.yaml, so evaluation and resumes read the same files even if
    # the built-in defaults change later
    d.train = str(root)
    train = load_records(root, "train", on_error=d.on_error)
    val = load_data(cfg, d.val, d.val_split) if d.val else load_records(root, "val")
    return list(train), list(val)


def model_context(model: Any) -> int | None:
    """The longest sequence the model's positions cover (``max_position_embeddings`` of its text config)."""
    cfg = getattr(model, "config", None)
    for c in (getattr(cfg, "text_config", None), cfg):
        n = getattr(c, "max_position_embeddings", None)
        if isinstance(n, int) and n > 0:
            return n
    return None


def limit_prompt_length(
    records: list[Any], prompts: list[Any], tokenizer: Any, max_tokens: int, *, on_error: str, label: str
) -> tuple[list[Any], list[Any]]:
    """Drop (``on_error=skip``, counted and logged) or refuse (``raise``: a :class:`DataError` naming the first
    item) the prompts whose templated text is longer than ``max_tokens`` tokens (image tokens not counted)."""
    if not prompts:
        return records, prompts
    lengths = [
        len(ids) for ids in tokenizer([p.text for p in prompts], add_special_tokens=False)["input_ids"]
    ]
    over = [i for i, n in enumerate(lengths) if n > max_tokens]
    if not over:
        return records, prompts
    first = over[0]
    what = (
        f"{label} item {getattr(records[first], 'id', first)!r}: its prompt is {lengths[first]} tokens, over "
        f"data.max_prompt_tokens={max_tokens}"
    )
    if on_error == "raise":
        raise DataError(
            f"{what} ({len(over)} such item(s); data.on_error=skip drops them, or raise data.max_prompt_tokens)"
        )
    import logging

    logging.getLogger("mssr.data").warning(
        "%s: skipped %d %s item(s) with too long prompts", what, len(over), label
    )
    drop = set(over)
    return (
        [r for i, r in enumerate(records) if i not in drop],
        [p for i, p in enumerate(prompts) if i not in drop],
    )


def prepare_model(
    cfg: TrainConfig, policy: Any, strategy: Any, device: Any, *, needs_ref: bool
) -> tuple[Any, Any]:
    """The policy's model made trainable: master weights in ``param_dtype`` on the device, frozen vision tower /
    LoRA adapters as configured, then the parallel strategy's wrapping; and the reference model (a frozen copy
    in the compute dtype, or None: not needed, or under LoRA, whose reference is the same model with adapters
    disabled). Returns ``(model, ref_model)``; under LoRA ``policy.model`` becomes the adapted model."""
    m = cfg.model
    model = policy.model.to(device=device, dtype=strategy.param_dtype)
    if m.freeze_vision:
        freeze_vision(model)
    ref_model = None
    if m.lora_rank:
        try:
            model = apply_lora(
                model,
                rank=m.lora_rank,
                alpha=m.lora_alpha,
                dropout=m.lora_dropout,
                target_modules=m.lora_target_modules,
                include_vision=m.lora_vision,
            )
        except ValueError as exc:  # a target name no linear layer has
            raise ConfigError(f"model.lora_target_modules: {exc}") from None
        if m.freeze_vision:  # peft made every adapter trainable, the tower's too
            freeze_vision(model)
        policy.model = model
    elif needs_ref:
        ref = copy.deepcopy(model).eval()
        ref.requires_grad_(False)
        if strategy.compute_dtype != torch.float32:
            ref.to(strategy.compute_dtype)  # forward-only: no master weights needed
        ref_model = strategy.wrap(ref)
    if m.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = strategy.wrap(model)
    model.train()
    return model, ref_model


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """The learning-rate multiplier of scheduler step ``step``: linear warm-up, then constant or cosine to 0."""
    o = cfg.optim
    warm = min(1.0, (step + 1) / o.warmup_steps) if o.warmup_steps else 1.0
    if o.lr_schedule == "cosine" and cfg.steps > 0:
        return warm * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))
    return warm


def build_prompts(
    cfg: TrainConfig, policy: Any, train_records: list[Any] | None, val_records: list[Any] | None
) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """The training and validation records (given, or built from the config) and their templated prompts,
    limited by ``data.max_train_items``, ``val.max_items`` and ``data.max_prompt_tokens`` (default: the model's
    context less ``rollout.max_new_tokens``). Returns ``(train_records, train_prompts, val_records,
    val_prompts)``; an empty training set or duplicate prompt keys raise."""
    if train_records is None:
        train_records, val_default = build_data(cfg)
        val_records = val_records if val_records is not None else val_default
    if cfg.data.max_train_items:
        train_records = train_records[: cfg.data.max_train_items]
    train_records = list(train_records)
    val_records = list(val_records or [])
    if cfg.val.max_items is not None:
        val_records = val_records[: cfg.val.max_items]
    proc = policy.processor
    kw = dict(instruction=cfg.data.instruction, system_prompt=cfg.data.system_prompt)
    if not train_records:
        raise DataError(
            f"the training set is empty (data.train={cfg.data.train}, split "
            f"{cfg.data.train_split!r}, max_train_items={cfg.data.max_train_items})"
        )
    train_prompts = records_to_prompts(train_records, proc, namespace="train", **kw)
    val_prompts = records_to_prompts(val_records, proc, namespace="val", **kw)
    limit = cfg.data.max_prompt_tokens
    if limit is None:
        context = model_context(policy.model)
        limit = context - cfg.rollout.max_new_tokens if context else None
    if limit is not None:
        tok = getattr(proc, "tokenizer", proc)
        on_error = cfg.data.on_error
        train_records, train_prompts = limit_prompt_length(
            train_records, train_prompts, tok, limit, on_error=on_error, label="training"
        )
        val_records, val_prompts = limit_prompt_length(
            val_records, val_prompts, tok, limit, on_error=on_error, label="validation"
        )
        if not train_prompts:
            raise DataError(f"every training prompt is longer than data.max_prompt_tokens={limit}")
    if len({p.key for p in train_prompts}) != len(train_prompts):
        raise ValueError("training prompts have duplicate keys (ids); the value tracker needs unique prompts")
    return train_records, train_prompts, val_records, val_prompts

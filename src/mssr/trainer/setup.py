"""Build what a :class:`TrainConfig` names: the starting policy and the train/validation records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mssr.data import load_records
from mssr.io import cache_root
from mssr.models import build_tiny_policy, load_policy
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


def build_data(cfg: TrainConfig) -> tuple[list[Any], list[Any]]:
    """Training and validation records: ``data.train``/``data.val`` files, or the built-in task."""
    d = cfg.data
    if d.train:
        train = load_records(d.train, d.train_split if Path(d.train).is_dir() else None, on_error=d.on_error)
        val: list[Any] = []
        if d.val:
            val = load_records(d.val, d.val_split if Path(d.val).is_dir() else None, on_error=d.on_error)
        elif Path(d.train).is_dir() and d.val_split and any(Path(d.train).glob(f"{d.val_split}.*")):
            val = load_records(d.train, d.val_split, on_error=d.on_error)
        return list(train), list(val)
    from mssr.data.builtin import ensure_dataset

    data_cfg = {**builtin_task(cfg), **d.builtin}
    root = ensure_dataset(cache_dir(cfg) / "data", **data_cfg)
    # pin the resolved dataset in the run's config.yaml, so evaluation and resumes read the same files even if
    # the built-in defaults change later
    d.train = str(root)
    train = load_records(root, "train", on_error=d.on_error)
    val = (
        load_records(d.val, d.val_split if Path(d.val).is_dir() else None)
        if d.val
        else load_records(root, "val")
    )
    return list(train), list(val)

"""The Python API: ``mssr.train(...)``, the notebook counterpart of ``mssr train``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mssr.config import load_config
from mssr.trainer.config import TrainConfig


def _as_records(items: Any, cfg: TrainConfig, split: str | None, label: str) -> list[Any] | None:
    """An in-memory dataset as Records: :class:`mssr.data.Record` s, dicts, a ``datasets.Dataset`` /
    ``DatasetDict``, read with the config's column mapping (``data.prompt_key`` ...) and ``data.on_error``
    like ``data.train``; EasyR1's and TRL's column names are recognised (docs/data.md)."""
    if items is None:
        return None
    from mssr.trainer.setup import load_data

    return load_data(cfg, items, split, label=None if isinstance(items, str) else label)


def train(
    config: TrainConfig | str | None = None,
    *,
    policy: Any | str | None = None,
    train_dataset: Sequence[Any] | None = None,
    val_dataset: Sequence[Any] | None = None,
    reward: str | Callable[..., Any] | None = None,
    overrides: Sequence[str] = (),
    **fields: Any,
) -> dict[str, Any]:
    """Train and return the run summary.

    ``config``: a :class:`TrainConfig`, a YAML path, or ``None`` (defaults). ``policy``: a
    :class:`mssr.models.Policy` or a checkpoint path. ``train_dataset`` / ``val_dataset``: a
    ``datasets.Dataset`` (a ``DatasetDict``: its ``data.train_split`` / ``data.val_split``), a list of dicts
    or Records, or a path / hub id as ``data.train`` takes.
    ``reward``: a reward spec or callable (see :func:`mssr.rewards.build_reward`). ``overrides`` are dotted
    ``key=value`` strings; ``fields`` set top-level fields (``steps=10, output_dir="runs/x"``).

    Raises :class:`mssr.trainer.rundir.TrainingInterrupted` (a ``KeyboardInterrupt``) when SIGINT / SIGTERM /
    SIGUSR1 stopped the run: the last completed step is checkpointed first, and calling ``train`` again with the
    same ``output_dir`` resumes from it. The rollout engine is closed on every exit (``RLTrainer.close``).
    """
    from mssr.trainer.trainer import RLTrainer

    if isinstance(config, TrainConfig):
        cfg = config
        if overrides or fields:
            from mssr.config import apply_overrides, from_dict, to_dict

            cfg = from_dict(
                TrainConfig,
                apply_overrides(to_dict(cfg), [*overrides, *(f"{k}={v}" for k, v in fields.items())]),
            )
            cfg.validate()
    else:
        cfg = load_config(TrainConfig, config, [*overrides, *(f"{k}={v}" for k, v in fields.items())])
    if isinstance(policy, str):
        from mssr.models import load_policy

        policy = load_policy(policy)
    train_records = _as_records(train_dataset, cfg, cfg.data.train_split, "train_dataset")
    val_records = _as_records(val_dataset, cfg, cfg.data.val_split, "val_dataset")
    if train_records is None and cfg.data.train:  # read data.train before the policy: a bad source fails fast
        from mssr.trainer.setup import build_data

        train_records, val_default = build_data(cfg)
        val_records = val_records if val_records is not None else val_default
    trainer = RLTrainer(
        cfg,
        policy=policy,
        train_records=train_records,
        val_records=val_records,
        reward=reward,
    )
    try:
        return trainer.train()
    finally:
        trainer.close()  # an engine with its own resources (vLLM) shuts down here, on every rank

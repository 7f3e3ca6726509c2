"""The cached SFT run: ``<cache root>/sft/<preset>-<cache key>/`` holds ``policy/``, ``sft_config.json``,
``loss_log.jsonl`` and ``metrics.json`` (written last: its presence marks a finished run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mssr.io import read_json, write_dir_atomic
from mssr.sft import trainer
from mssr.sft.config import SFTConfig

DONE_FILE = "metrics.json"


def run_sft(cfg: SFTConfig, *, force: bool = False) -> Path:
    """Train the SFT base policy for ``cfg`` unless its cached result exists; return the run directory.

    The policy is at ``<dir>/policy``; ``<dir>/metrics.json`` (written last) marks a finished run.
    Training happens in a temporary sibling directory renamed into place, so concurrent callers never see a
    half-written run.
    """
    final = cfg.output_dir()
    if (final / DONE_FILE).is_file() and not force:
        return final
    init_dir = (
        run_sft(cfg.init_config()) if cfg.init_sft is not None else None
    )  # the curriculum's first stage

    def build(tmp: Path) -> None:
        metrics = trainer.train_sft(cfg, tmp, init_dir)
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


def is_cached(cfg: SFTConfig) -> bool:
    """Does a finished run for ``cfg`` exist?"""
    return (cfg.output_dir() / DONE_FILE).is_file()


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    return read_json(Path(run_dir) / DONE_FILE, what="SFT metrics")

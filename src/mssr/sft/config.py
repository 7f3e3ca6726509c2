"""The SFT config: everything that determines the warm-start base (hashed into its cache key), plus run-time
settings, loaded like every other command's config (YAML file → dotted ``key=value`` overrides)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mssr.config import ConfigError, load_config
from mssr.io import cache_root
from mssr.models import DEFAULT_INSTRUCTION

SFT_VERSION = 1  # bump when a change alters what a config trains; part of the cache key


def default_data() -> dict[str, Any]:
    """The built-in task the default base is trained on (options of :func:`mssr.data.builtin.ensure_dataset`).

    The CPU main job's task: one large shape, colour of it, free-form answers. The tiny preset learns this in
    ~100 steps; the four multi-step families and multiple-choice letters stayed at chance for 700 SFT steps
    (docs/models.md), so they are not the default warm start.
    """
    return {
        "seed": 1,
        "n_train": 2000,
        "n_val": 200,
        "n_test": 0,
        "families": ["shapes"],
        "difficulty": "easy",
        "mc_fraction": 0.0,
    }


@dataclass
class SFTConfig:
    """Everything that determines the SFT base policy (all of it but the run-time fields is hashed).

    The field names, defaults and their hashing are the cache key of existing bases: renaming or adding a
    hashed field changes every key (and so retrains every cached base).
    """

    preset: str = "tiny"  # model size (mssr.models.presets)
    # built-in dataset options (mssr.data.builtin); ``mssr sft data.seed=2`` changes one, keeping the others
    data: dict[str, Any] = field(default_factory=default_data)
    data_dir: str | None = None  # train on this dataset directory (train/val[/test] splits), not ``data``
    instruction: str | None = DEFAULT_INSTRUCTION  # appended to each question; null: none
    init_seed: int = 0  # model initialisation
    # curriculum: start from the base another SFT config trains (path of its YAML, trained first if not cached)
    # instead of fresh weights; null (the default) leaves the cache key exactly as it was without this field
    init_sft: str | None = None
    seed: int = 0  # data order and evaluation sampling
    max_steps: int = 3000  # optimizer steps at most; the learning-rate schedule spans them
    # end after this many steps of the ``max_steps`` schedule: a snapshot of the same run part-way (for a base
    # less trained than the full run, e.g. one with more entropy); null (the default) leaves the key alone
    stop_step: int | None = None
    batch_size: int = 16  # examples per step
    lr: float = 5e-3  # peak learning rate (AdamW, betas 0.9/0.95)
    min_lr_ratio: float = 0.1  # the cosine decay ends at lr * this at max_steps
    warmup_steps: int = 30  # linear warm-up steps
    weight_decay: float = 0.01  # on matrices other than embeddings
    grad_clip: float = 1.0  # global gradient-norm clip
    stop_accuracy: float | None = 0.30  # stop at the first dev check whose accuracy >= this; null: never
    eval_every: int = 10  # dev check every this many steps (0: none); tiny crosses the band in ~10-20
    n_dev: int = 100  # dev slice for the stop check: the SFT dataset's val split (never trained on)
    n_test_eval: int = 200  # reported accuracy: the SFT dataset's test split (not used for any choice)
    eval_max_new_tokens: int = 64  # response budget of the sampled evaluation
    eval_batch_size: int = 64  # records per sampling call; each call draws its own seed (part of the stream)
    # run-time only (not part of the cache key)
    cache_dir: str | None = None  # cache root (default: $MSSR_CACHE or ~/.cache/mssr)
    out: str | None = None  # write the run here instead of the config-keyed cache directory
    threads: int | None = None  # torch threads (default: torch's)
    progress: bool = True  # show a progress bar

    RUNTIME_FIELDS = ("cache_dir", "out", "threads", "progress")

    def __post_init__(self) -> None:
        if self.instruction == "default":  # the library-wide name of the paper's instruction
            self.instruction = DEFAULT_INSTRUCTION

    def validate(self) -> None:
        for name in ("max_steps", "batch_size", "eval_max_new_tokens", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_every", "n_dev", "n_test_eval"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.stop_step is not None and not 1 <= self.stop_step <= self.max_steps:
            raise ConfigError(
                f"stop_step must be in [1, max_steps={self.max_steps}] or null, got {self.stop_step}"
            )
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.stop_accuracy is not None and not 0.0 <= self.stop_accuracy <= 1.0:
            raise ConfigError(f"stop_accuracy must be in [0, 1] or null, got {self.stop_accuracy}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1 or null, got {self.threads}")
        from mssr.models.presets import PRESETS

        if self.preset not in PRESETS:
            raise ConfigError(f"preset: {self.preset!r} is not one of {', '.join(sorted(PRESETS))}")
        if self.init_sft is not None and not Path(self.init_sft).is_file():
            raise ConfigError(f"init_sft: {self.init_sft!r} is not a file (an SFT YAML)")
        if self.data_dir is None:
            from mssr.data.builtin import config_key

            try:
                config_key(**self.data)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"data: {exc}") from None

    def key_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in self.RUNTIME_FIELDS}
        d["sft_version"] = SFT_VERSION
        if self.init_sft is None:
            del d["init_sft"]  # keys of configs without a curriculum stay what they were
        else:
            d["init_sft"] = self.init_config().cache_key()  # the stage it starts from, by what it trains
        if self.stop_step is None:
            del d["stop_step"]  # likewise for runs to the end of their schedule
        if self.data_dir is None:
            from mssr.data.builtin import config_key

            d["data_key"] = config_key(**self.data)
        return d

    def init_config(self) -> SFTConfig:
        """The config of the stage this one starts from (``init_sft``), with this run's run-time fields."""
        if self.init_sft is None:
            raise ConfigError("init_sft is not set")
        init = load_sft_config(self.init_sft)
        init.cache_dir, init.threads, init.progress = self.cache_dir, self.threads, self.progress
        return init

    def cache_key(self) -> str:
        blob = json.dumps(self.key_dict(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def cache_root(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else cache_root()

    def output_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        return self.cache_root() / "sft" / f"{self.preset}-{self.cache_key()}"


def load_sft_config(path: str | Path | None = None, overrides: list[str] | None = None) -> SFTConfig:
    """Defaults ← YAML at ``path`` ← dotted ``overrides`` (:func:`mssr.config.load_config`), then validated.

    ``data`` is merged key by key onto :func:`default_data` (``data.seed=2`` keeps the other options); a value
    given as an integer where the default is a float (``data.mc_fraction=0``) is stored as the float, so that
    the same data hashes to the same cache key however it was written.
    """
    cfg = load_config(SFTConfig, path, overrides)
    defaults = default_data()
    data = {**defaults, **cfg.data}
    for k, v in data.items():
        if isinstance(defaults.get(k), float) and isinstance(v, int) and not isinstance(v, bool):
            data[k] = float(v)
    cfg.data = data
    cfg.validate()
    return cfg

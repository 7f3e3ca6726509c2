"""What a comparison runs: arms (an algorithm, optionally with a named variant) × seeds, on one shared base.

Every run's config is ``base YAML ← shared overrides ← algorithm.name ← the variant's overrides ← seed and
output_dir``. The rollouts per step come from the shared base, so every arm spends the same rollout budget
per step (a group method takes fewer prompts, each with n rollouts; docs/method.md "Single-rollout").

Variant syntax (``--variants``): ``name:key=value,key=value;name2:key=value``. A variant whose overrides set
``algorithm.name``, or whose name starts with an algorithm's name followed by ``_`` or ``-`` (``mssr_full``,
``mvsr-lr3e-4``), is one arm of that algorithm; any other variant (``equal_updates``) is applied to every
algorithm of the comparison, as arms named ``<algorithm>+<variant>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mssr.config import ConfigError, apply_overrides, read_yaml

# keys the comparison sets itself: a user override of them would break the run layout or resumption
RESERVED_KEYS = ("seed", "output_dir", "checkpoint.resume")
# keys a variant may not change: every arm spends the same rollouts per step
SHARED_ONLY_KEYS = ("rollout.rollouts_per_step",)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_ITEM_SPLIT = re.compile(r",(?=\s*[A-Za-z_][\w.]*\s*=)")  # commas that start a new key=value

# `mssr compare --quick`: a small setting that finishes in <= 15 minutes on 2 CPU cores (docs/compare.md).
QUICK_ALGORITHMS = ("mssr", "mvsr", "grpo")
QUICK_SEEDS = (0,)
QUICK_OVERRIDES = (
    "steps=30",
    "rollout.rollouts_per_step=32",  # MSSR/MVSR 32 prompts × 1, GRPO 4 × 8
    "optim.mini_batch_prompts=8",  # the paper's convention: 4 updates per step single-rollout, 1 for GRPO
    "data.max_train_items=512",  # the tracker's one-off initialisation: one rollout per training prompt
    "val.every=5",
    "val.max_items=100",
    "checkpoint.every=10",
    "logging.tensorboard=false",
)


class CompareError(ValueError):
    """A bad comparison request; the message names the variant, key or run at fault."""


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: tuple[str, ...]

    def get(self, key: str) -> str | None:
        for o in self.overrides:
            k, v = o.split("=", 1)
            if k.strip() == key:
                return v.strip()
        return None


@dataclass(frozen=True)
class Arm:
    """One curve of the comparison: an algorithm with the overrides of at most one variant."""

    name: str
    algorithm: str
    variant: str | None
    overrides: tuple[str, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class RunSpec:
    arm: str
    algorithm: str
    variant: str | None
    seed: int
    rel_dir: str  # relative to the compare directory
    overrides: tuple[str, ...]  # everything after the shared ones (algorithm, variant, seed, output_dir)

    @property
    def id(self) -> str:
        return f"{self.arm}/seed{self.seed}"


@dataclass
class ComparePlan:
    base: str | None
    shared_overrides: tuple[str, ...]
    arms: list[Arm]
    out: Path
    reference: str = "grpo"
    runs: list[RunSpec] = field(default_factory=list)

    def shared_dict(self) -> dict[str, Any]:
        """The shared base (YAML + shared overrides) as a nested dict, before any arm's changes."""
        data = read_yaml(Path(self.base)) if self.base else {}
        return apply_overrides(data, list(self.shared_overrides))

    def run_config(self, run: RunSpec) -> Any:
        """The validated :class:`TrainConfig` of one run."""
        from mssr.config import load_config
        from mssr.trainer.config import TrainConfig

        try:
            cfg = load_config(TrainConfig, self.base, [*self.shared_overrides, *run.overrides])
        except ConfigError as e:
            where = f"variant {run.variant!r}" if run.variant else f"algorithm {run.algorithm!r}"
            raise CompareError(f"run {run.id} ({where}): config error: {e}") from None
        return cfg


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` or ``"0-4"`` (inclusive ranges) or a mix; duplicates are an error."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        try:
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                if hi < lo:
                    raise CompareError(f"seeds: empty range {part!r}")
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise CompareError(f"seeds: {part!r} is not an integer or a range like 0-4") from None
    if not seeds:
        raise CompareError("seeds: none given")
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise CompareError(f"seeds: {dup[0]} is given twice")
    return tuple(seeds)


def parse_algorithms(text: str) -> tuple[str, ...]:
    from mssr.algos import ALGORITHMS

    names = tuple(a.strip() for a in str(text).split(",") if a.strip())
    if not names:
        raise CompareError("algorithms: none given")
    for a in names:
        if a not in ALGORITHMS:
            raise CompareError(f"algorithms: unknown {a!r}; known: {', '.join(ALGORITHMS.names())}")
    if len(set(names)) != len(names):
        raise CompareError("algorithms: an algorithm is given twice")
    return names


def _check_override(item: str, where: str, *, variant: bool) -> str:
    if "=" not in item:
        raise CompareError(f"{where}: {item!r} must look like key.path=value")
    key = item.split("=", 1)[0].strip()
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", key):
        raise CompareError(f"{where}: {key!r} is not a dotted config key")
    if key in RESERVED_KEYS:
        raise CompareError(f"{where}: {key} is set by mssr compare for every run and may not be overridden")
    if variant and key in SHARED_ONLY_KEYS:
        raise CompareError(
            f"{where}: {key} must be the same for every arm (equal rollouts per step); set it for all runs "
            "as a shared key=value override instead"
        )
    return f"{key}={item.split('=', 1)[1].strip()}"


def check_shared_overrides(overrides: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_check_override(o, "override", variant=False) for o in overrides)


def parse_variants(text: str | None) -> tuple[Variant, ...]:
    """Parse ``name:key=value,key=value;name2:...`` (see the module docstring)."""
    if not text or not text.strip():
        return ()
    out: list[Variant] = []
    for chunk in (c.strip() for c in text.split(";")):
        if not chunk:
            continue
        if ":" not in chunk:
            raise CompareError(f"variant {chunk!r}: expected name:key=value[,key=value...]")
        name, body = (s.strip() for s in chunk.split(":", 1))
        if not NAME_RE.fullmatch(name or ""):
            raise CompareError(
                f"variant {chunk!r}: name {name!r} must start with a letter or digit and use only "
                "letters, digits, '_', '-', '.'"
            )
        items = [i.strip() for i in _ITEM_SPLIT.split(body) if i.strip()]
        if not items:
            raise CompareError(f"variant {name!r}: no key=value overrides")
        overrides = tuple(_check_override(i, f"variant {name!r}", variant=True) for i in items)
        keys = [o.split("=", 1)[0] for o in overrides]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise CompareError(f"variant {name!r}: key {dup[0]} is given twice")
        if any(v.name == name for v in out):
            raise CompareError(f"variant {name!r} is defined twice")
        out.append(Variant(name, overrides))
    return tuple(out)


def variant_algorithm(variant: Variant) -> str | None:
    """The algorithm a variant belongs to (its ``algorithm.name``, or its name's algorithm prefix), or None."""
    from mssr.algos import ALGORITHMS

    explicit = variant.get("algorithm.name")
    if explicit is not None:
        if explicit not in ALGORITHMS:
            raise CompareError(
                f"variant {variant.name!r}: unknown algorithm.name {explicit!r}; known: "
                f"{', '.join(ALGORITHMS.names())}"
            )
        return explicit
    matches = [a for a in ALGORITHMS.names() if variant.name.startswith((f"{a}_", f"{a}-"))]
    return max(matches, key=len) if matches else None


def plan_arms(
    algorithms: tuple[str, ...],
    seeds: tuple[int, ...],
    variants: tuple[Variant, ...] = (),
    variant_seeds: tuple[int, ...] | None = None,
) -> list[Arm]:
    arms = [Arm(a, a, None, (f"algorithm.name={a}",), seeds) for a in algorithms]
    vseeds = variant_seeds if variant_seeds is not None else seeds
    for v in variants:
        algo = variant_algorithm(v)
        rest = tuple(o for o in v.overrides if not o.startswith("algorithm.name="))
        if algo is not None:
            arms.append(Arm(v.name, algo, v.name, (f"algorithm.name={algo}", *rest), vseeds))
        else:
            for a in algorithms:
                arms.append(Arm(f"{a}+{v.name}", a, v.name, (f"algorithm.name={a}", *rest), vseeds))
    names = [a.name for a in arms]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CompareError(f"arm {dup[0]!r} is defined twice (a variant may not reuse an algorithm's name)")
    return arms


def plan_compare(
    *,
    base: str | None,
    algorithms: tuple[str, ...],
    seeds: tuple[int, ...],
    variants: tuple[Variant, ...] = (),
    variant_seeds: tuple[int, ...] | None = None,
    overrides: tuple[str, ...] = (),
    out: str | Path | None = None,
    reference: str = "grpo",
) -> ComparePlan:
    """Resolve arms × seeds into runs and validate every run's config (nothing is written)."""
    shared = check_shared_overrides(overrides)
    if base is not None and not Path(base).is_file():
        raise CompareError(f"base config {base} does not exist")
    arms = plan_arms(algorithms, seeds, variants, variant_seeds)
    plan = ComparePlan(base, shared, arms, Path("."), reference)
    plan.out = Path(out) if out else default_out(plan)
    shared_dict = plan.shared_dict()
    base_algorithm = shared_dict.get("algorithm") or {}
    base_algo = base_algorithm.get("name", "mssr")
    base_sets_n = "rollouts_per_prompt" in base_algorithm and not _user_sets_n(shared)
    seed_order = sorted({s for a in arms for s in a.seeds}, key=lambda s: (s not in seeds, s))
    for s in seed_order:  # seed-major: an interrupted comparison still covers every arm
        for a in arms:
            if s not in a.seeds:
                continue
            # a group size in the base YAML belongs to the base's algorithm; other algorithms take their own
            own_n = any(o.startswith("algorithm.rollouts_per_prompt=") for o in a.overrides)
            reset = (
                ("algorithm.rollouts_per_prompt=null",)
                if base_sets_n and not own_n and a.algorithm != base_algo
                else ()
            )
            rel = f"runs/{a.name}/seed{s}"
            ov = (
                *reset,
                *a.overrides,
                f"seed={s}",
                f"output_dir={(plan.out / rel).resolve()}",
                "checkpoint.resume=auto",
                "logging.progress=false",
            )
            plan.runs.append(RunSpec(a.name, a.algorithm, a.variant, s, rel, ov))
    per_step = {}
    for r in plan.runs:
        cfg = plan.run_config(r)
        per_step[r.id] = cfg.rollout.rollouts_per_step
    if len(set(per_step.values())) > 1:  # e.g. a variant replacing the whole rollout section
        raise CompareError(f"runs differ in rollout.rollouts_per_step: {per_step}")
    return plan


def _user_sets_n(shared: tuple[str, ...]) -> bool:
    return any(o.startswith("algorithm.rollouts_per_prompt=") for o in shared)


def default_out(plan: ComparePlan) -> Path:
    """``runs/compare-<base name>-<hash of the shared base>``: the same base resumes in the same directory."""
    blob = json.dumps(plan.shared_dict(), sort_keys=True, default=str)
    stem = Path(plan.base).stem if plan.base else "defaults"
    return Path("runs") / f"compare-{stem}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        path = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) or isinstance(vb, dict):
            va = va if isinstance(va, dict) else ({} if va is None else {"": va})
            vb = vb if isinstance(vb, dict) else ({} if vb is None else {"": vb})
            out.extend(config_diff(va, vb, f"{path}."))
        elif va != vb:
            out.append(path)
    return out

"""Reward functions: built-ins, weighted combinations, and plug-ins loaded by name.

A reward is called **once per response**: ``reward(response: str, record: dict) -> float | dict | None``.
``record`` holds the dataset columns of that prompt (``answer``, ``answer_type``, ``choices``, ``question``,
``images`` as PIL images, and any extra column). Return

* a number (bool/int/float) — the reward;
* a dict with an ``"overall"`` number plus any other numeric keys (logged as extras);
* ``None`` — no reward for this response (it is excluded from baselines and statistics).

A reward object may declare ``columns``: the record keys it reads (``None`` = all). Process pools only ship
those columns, so the built-ins never pickle images.

Plug-ins are named ``"package.module:function"`` or ``"path/to/file.py:function"``. They are loaded lazily
and pickled *by name*, so process workers re-import them instead of needing a picklable function.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mssr.rewards.extract import last_answer_tag, last_boxed
from mssr.rewards.text import to_text
from mssr.rewards.verify import MODES, Verdict, verify

RewardValue = float | dict[str, float] | None


class RewardSpecError(ValueError):
    """A reward spec that cannot be built (unknown name, missing file/attribute, bad weight)."""


class AccuracyReward:
    """1.0 if the response's final answer is correct under :func:`mssr.rewards.verify`, else 0.0.

    Reads ``answer`` (required), ``answer_type``, ``choices`` and ``precision`` from the record. Training uses
    ``mode="strict"``. ``require_delimited=True`` (default, as in the paper: "accuracy of the last ``\\boxed{}``")
    scores only answers given in ``\\boxed{}`` or ``<answer>…</answer>``; ``False`` also accepts the prose
    fallbacks of :func:`~mssr.rewards.extract.extract_answer` ("the answer is 4"). ``require_clean_end=True``
    further demands that nothing but whitespace, closing delimiters or end tags follow that answer (a policy
    that pads junk after a correct answer earns 0).
    """

    columns: tuple[str, ...] = ("answer", "answer_type", "choices", "precision")

    def __init__(
        self, mode: str = "strict", require_clean_end: bool = False, require_delimited: bool = True
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.require_clean_end = require_clean_end
        self.require_delimited = require_delimited

    def __call__(self, response: str, record: Mapping[str, Any]) -> float:
        if "answer" not in record:
            raise KeyError(f"the accuracy reward needs an 'answer' column; record has {sorted(record)}")
        return 1.0 if self.explain(response, record).correct else 0.0

    def explain(self, response: str, record: Mapping[str, Any]) -> Verdict:
        """The verdict behind the reward: ``not_delimited`` when a delimited answer is required and absent,
        else :func:`verify`'s (extracted answer and reason, for results files)."""
        if self.require_delimited and not is_delimited(to_text(response)):
            return Verdict(False, None, "not_delimited")
        return verify(
            response,
            record["answer"],
            answer_type=record.get("answer_type"),
            choices=record.get("choices") or None,
            mode=self.mode,
            precision=_int_or_none(record.get("precision")),
            require_clean_end=self.require_clean_end,
        )

    def __repr__(self) -> str:
        return (
            f"AccuracyReward(mode={self.mode!r}, require_clean_end={self.require_clean_end}, "
            f"require_delimited={self.require_delimited})"
        )


def is_delimited(text: str) -> bool:
    """The response puts its final answer in ``\\boxed{}`` or ``<answer>…</answer>``."""
    return last_boxed(text) is not None or last_answer_tag(text) is not None


def _int_or_none(x: Any) -> int | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return int(x)


_THINK_THEN_BOX = re.compile(r"^\s*<think>(?P<think>.*?)</think>(?P<rest>.*)$", re.S)


class FormatReward:
    """1.0 if the response is ``<think>…</think>`` followed by a final answer in a complete ``\\boxed{}``.

    Exactly one think block, opening the response, non-empty; the box after it. With ``require_clean_end``,
    only whitespace / closing delimiters / end tags may follow the box.
    """

    columns: tuple[str, ...] = ()

    def __init__(self, require_clean_end: bool = False) -> None:
        self.require_clean_end = require_clean_end

    def __call__(self, response: str, record: Mapping[str, Any] | None = None) -> float:
        text = to_text(response)
        m = _THINK_THEN_BOX.match(text)
        if (
            not m
            or not m.group("think").strip()
            or "<think>" in m.group("rest")
            or "</think>" in m.group("rest")
        ):
            return 0.0
        rest = m.group("rest")
        box = last_boxed(rest)
        if box is None or not box[0].strip():
            return 0.0
        if self.require_clean_end and not re.fullmatch(
            r"(?:\s|\$|\\\]|\\\)|\.|</answer>|<\|im_end\|>|<\|endoftext\|>|</s>)*", rest[box[2] :]
        ):
            return 0.0
        return 1.0

    def __repr__(self) -> str:
        return f"FormatReward(require_clean_end={self.require_clean_end})"


class PluginReward:
    """A user reward named ``"pkg.mod:func"`` or ``"path/to/file.py:func"``; pickles as its name."""

    columns = None

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._fn: Callable[..., Any] | None = None
        self.load()  # fail early, with a clear message

    def load(self) -> Callable[..., Any]:
        if self._fn is None:
            self._fn = load_callable(self.spec)
            self.columns = getattr(self._fn, "columns", None)
        return self._fn

    def __call__(self, response: str, record: Mapping[str, Any]) -> RewardValue:
        return self.load()(response, record)

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "columns": self.columns}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec, self.columns, self._fn = state["spec"], state["columns"], None

    def __repr__(self) -> str:
        return f"PluginReward({self.spec!r})"


class CallableReward:
    """Wraps a plain callable given directly (lambdas work in-process; see ``score_batch`` for pools)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.columns = getattr(fn, "columns", None)

    def __call__(self, response: str, record: Mapping[str, Any]) -> RewardValue:
        return self.fn(response, record)

    def __repr__(self) -> str:
        return f"CallableReward({getattr(self.fn, '__qualname__', self.fn)!r})"


class WeightedReward:
    """``overall = Σ w_k · r_k`` over named components; each component's value is also logged as an extra.

    A component that returns ``None`` makes the overall ``None`` if its weight is non-zero (and is simply not
    logged otherwise). Dict-valued components contribute their ``overall`` and prefix their extras
    (``"mycomp/key"``).
    """

    def __init__(self, components: Mapping[str, tuple[float, Callable[..., Any]]]) -> None:
        if not components:
            raise RewardSpecError("a weighted reward needs at least one component")
        self.components = dict(components)
        cols: set[str] = set()
        for _, fn in self.components.values():
            c = getattr(fn, "columns", None)
            if c is None:
                cols = None  # type: ignore[assignment]
                break
            cols.update(c)
        self.columns = tuple(sorted(cols)) if cols is not None else None

    def __call__(self, response: str, record: Mapping[str, Any]) -> RewardValue:
        total = 0.0
        out: dict[str, float] = {}
        missing = False
        for name, (weight, fn) in self.components.items():
            overall, extras = split_value(fn(response, record), where=f"component {name!r}")
            for k, v in extras.items():
                out[f"{name}/{k}"] = v
            if overall is None:
                missing = missing or weight != 0
                continue
            out[name] = overall
            total += weight * overall
        out["overall"] = None if missing else total  # type: ignore[assignment]
        return out

    def __repr__(self) -> str:
        return "WeightedReward(" + ", ".join(f"{k}={w}" for k, (w, _) in self.components.items()) + ")"


def split_value(value: Any, *, where: str = "reward") -> tuple[float | None, dict[str, float]]:
    """Check a reward's return value; give ``(overall, extras)``. Raises ``TypeError``/``ValueError`` on junk."""
    if value is None:
        return None, {}
    if isinstance(value, Mapping):
        if "overall" not in value:
            raise ValueError(f"{where} returned a dict without an 'overall' key (keys: {sorted(value)})")
        overall, _ = split_value(value["overall"], where=f"{where}['overall']")
        extras = {}
        for k, v in value.items():
            if k == "overall":
                continue
            x, _ = split_value(v, where=f"{where}[{k!r}]")
            if x is not None:
                extras[str(k)] = x
        return overall, extras
    if isinstance(value, bool):
        return float(value), {}
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{where} returned {type(value).__name__}, expected a number, a dict or None"
        ) from None
    if math.isnan(x):
        raise ValueError(f"{where} returned NaN")
    return x, {}


BUILTIN: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {"accuracy": AccuracyReward, "format": FormatReward}
)


def build_reward(spec: Any, **options: Any) -> Callable[[str, Mapping[str, Any]], RewardValue]:
    """Build a reward from a spec.

    * ``"accuracy"`` / ``"format"`` — built-ins; ``options`` go to their constructor (``require_clean_end``,
      ``mode``);
    * ``{"accuracy": 1.0, "format": 0.0}`` — weighted sum of named components (each key is itself a spec);
    * ``"pkg.mod:func"`` / ``"path/to/file.py:func"`` — a plug-in;
    * a callable ``f(response, record)`` — used as is.
    """
    if isinstance(spec, AccuracyReward | FormatReward | PluginReward | CallableReward | WeightedReward):
        return spec
    if callable(spec):
        return CallableReward(spec)
    if isinstance(spec, Mapping):
        comps = {}
        for name, weight in spec.items():
            try:
                w = float(weight)
            except (TypeError, ValueError):
                raise RewardSpecError(f"weight of reward {name!r} must be a number, got {weight!r}") from None
            if not math.isfinite(w):
                raise RewardSpecError(f"weight of reward {name!r} must be finite, got {weight!r}")
            fn = build_reward(name, **(options if name in BUILTIN else {}))
            comps[_component_name(name)] = (w, fn)
        return WeightedReward(comps)
    if isinstance(spec, str):
        name = spec.strip()
        if name in BUILTIN:
            try:
                return BUILTIN[name](**options)
            except TypeError as exc:
                raise RewardSpecError(f"bad options for reward {name!r}: {exc}") from None
        if ":" in name:
            return PluginReward(name)
        raise RewardSpecError(
            f"unknown reward {spec!r}: use one of {sorted(BUILTIN)}, 'package.module:function', "
            "'path/to/file.py:function', a dict of weights, or a callable"
        )
    raise RewardSpecError(f"cannot build a reward from {type(spec).__name__}: {spec!r}")


def _component_name(spec: str) -> str:
    return spec.rsplit(":", 1)[-1] if ":" in spec else spec


def load_callable(spec: str) -> Callable[..., Any]:
    """Resolve ``"pkg.mod:attr"`` or ``"path/to/file.py:attr"`` to the callable it names."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise RewardSpecError(f"plug-in spec {spec!r} must look like 'pkg.mod:func' or 'path/file.py:func'")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise RewardSpecError(f"plug-in file not found: {path} (from spec {spec!r})")
        mod_name = "mssr_plugin_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
        module = sys.modules.get(mod_name)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(mod_name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise RewardSpecError(f"cannot import plug-in file {path}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[mod_name] = module
            try:
                loader_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[mod_name]
                raise
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise RewardSpecError(f"cannot import module {target!r} for plug-in {spec!r}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RewardSpecError(f"plug-in {spec!r}: {target} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise RewardSpecError(f"plug-in {spec!r} is not callable ({type(obj).__name__})")
    return obj

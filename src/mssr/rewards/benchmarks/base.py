"""The benchmark-format interface and its registry (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mssr.rewards.verify import Verdict, verify


class BenchmarkFormatError(ValueError):
    """A problems/responses file that does not match its benchmark's format."""


@dataclass
class GradeItem:
    """One response to grade. ``official`` is the benchmark's own verdict when the file carries it."""

    id: str
    response: str
    answer: str
    answer_type: str | None = None
    choices: list[str] | None = None
    precision: int | None = None
    question_type: str | None = None
    question: str = ""
    official: bool | None = None
    official_extraction: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # breakdown keys and anything else worth reporting


class BenchmarkFormat:
    """Base class: subclasses implement :meth:`load`; :meth:`verify` defaults to mssr's verifier."""

    name: str = ""
    #: GradeItem attributes or ``meta`` keys to break accuracy/agreement down by
    breakdown_keys: tuple[str, ...] = ("answer_type", "question_type")

    def load(self, problems: Path, responses: Path) -> list[GradeItem]:
        raise NotImplementedError

    def verify(self, item: GradeItem, mode: str) -> Verdict:
        return verify(
            item.response,
            item.answer,
            answer_type=item.answer_type,
            choices=item.choices,
            mode=mode,
            precision=item.precision,
        )

    def official_prediction(self, item: GradeItem, extraction: str | None) -> str | None:
        """The benchmark's normalised prediction for an extraction (for disagreement analysis), if defined."""
        return None


_REGISTRY: dict[str, type[BenchmarkFormat]] = {}


def register_benchmark(name: str) -> Callable[[type[BenchmarkFormat]], type[BenchmarkFormat]]:
    def deco(cls: type[BenchmarkFormat]) -> type[BenchmarkFormat]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"benchmark format {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get_benchmark(name: str) -> BenchmarkFormat:
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise KeyError(f"unknown benchmark format {name!r}; available: {available_benchmarks()}") from None


def available_benchmarks() -> list[str]:
    return sorted(_REGISTRY)

"""What every built-in task family provides, and small sampling helpers shared by the families.

A family turns a random generator and a difficulty into a *scene*: a JSON-able dict holding everything
drawn in the image plus the query (which template, which colours are asked about). The question, the
answer and the worked-solution steps are pure functions of the scene, and :meth:`Family.render` draws it.
Answers are sampled (close to) uniformly over each template's answer range first and the scene is built
around them, so the question text alone says nothing about the answer beyond its range.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from PIL import Image

DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
Scene = dict[str, Any]


class Family(ABC):
    """A procedural task family: sample a scene, derive question/answer/solution, render the image."""

    name: str
    templates: ClassVar[dict[str, tuple[str, ...]]]  # difficulty -> templates available at that difficulty

    @abstractmethod
    def sample(self, rng: random.Random, difficulty: str, template: str) -> Scene:
        """A new scene of ``template`` at ``difficulty``; must contain ``family``, ``template``, ``difficulty``."""

    @abstractmethod
    def question(self, scene: Scene) -> str:
        """The question text (no image placeholder, no choices)."""

    @abstractmethod
    def answer(self, scene: Scene) -> str:
        """The answer, recomputed from the scene."""

    @abstractmethod
    def steps(self, scene: Scene) -> str:
        """The worked-solution steps that go inside ``<think>``: read values from the image, then combine."""

    @abstractmethod
    def options(self, scene: Scene) -> list[str]:
        """Every answer this template can have at this difficulty (distractors for multiple choice)."""

    @abstractmethod
    def render(self, scene: Scene, size: int) -> Image.Image:
        """Draw the scene as a ``size`` x ``size`` RGB image."""

    def answer_type(self, scene: Scene) -> str:
        return "integer"

    def pick_template(self, rng: random.Random, difficulty: str) -> str:
        if difficulty not in self.templates:
            raise ValueError(
                f"{self.name}: unknown difficulty {difficulty!r}; expected one of {DIFFICULTIES}"
            )
        return rng.choice(self.templates[difficulty])


def split_total(rng: random.Random, total: int, parts: int, lo: int, hi: int) -> list[int]:
    """Uniformly chosen composition of ``total`` into ``parts`` integers each in [lo, hi]."""
    if not parts * lo <= total <= parts * hi:
        raise ValueError(f"cannot split {total} into {parts} parts in [{lo}, {hi}]")
    out: list[int] = []
    remaining = total
    for k in range(parts, 0, -1):
        if k == 1:
            out.append(remaining)
            break
        # number of completions for each choice of this part, to sample compositions uniformly
        choices = [v for v in range(lo, hi + 1) if (k - 1) * lo <= remaining - v <= (k - 1) * hi]
        weights = [_count_compositions(remaining - v, k - 1, lo, hi) for v in choices]
        v = rng.choices(choices, weights=weights)[0]
        out.append(v)
        remaining -= v
    return out


def _count_compositions(total: int, parts: int, lo: int, hi: int) -> int:
    if parts == 0:
        return 1 if total == 0 else 0
    return sum(_count_compositions(total - v, parts - 1, lo, hi) for v in range(lo, hi + 1) if total - v >= 0)


def r4(v: float) -> float:
    """Round unit coordinates so scenes round-trip through JSON exactly."""
    return round(float(v), 4)

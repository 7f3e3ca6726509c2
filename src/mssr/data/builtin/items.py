"""Assemble one built-in item (question, answer, multiple-choice variant, worked solution) from a scene."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .arithmetic import Arithmetic
from .bars import Bars
from .counting import Counting
from .family import DIFFICULTIES, Family, Scene
from .geometry import Geometry
from .shapes import Shapes

FAMILIES: dict[str, Family] = {f.name: f for f in (Counting(), Arithmetic(), Bars(), Geometry(), Shapes())}
LETTERS = "ABCD"


@dataclass
class Item:
    """One generated task item; ``to_row`` gives its on-disk JSONL row."""

    id: str
    question: str  # placeholder-free; multiple-choice items list their choices here
    answer: str
    answer_type: str
    choices: list[str] | None
    family: str
    difficulty: str
    template: str
    solution: str
    scene: Scene

    def render(self, size: int) -> Image.Image:
        return FAMILIES[self.family].render(self.scene, size)

    def to_row(self, image_path: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "images": [image_path],
            "problem": f"<image>{self.question}",
            "answer": self.answer,
            "answer_type": self.answer_type,
            "choices": self.choices,
            "family": self.family,
            "difficulty": self.difficulty,
            "template": self.template,
            "solution": self.solution,
            "scene": self.scene,
        }


def format_solution(steps: str, answer: str) -> str:
    """The paper's response format: reasoning in ``<think>`` tags, then the final answer boxed."""
    return f"<think>{steps}</think> \\boxed{{{answer}}}"


def format_choices(choices: list[str]) -> str:
    return "Choices: " + " ".join(f"{LETTERS[k]}. {c}" for k, c in enumerate(choices))


def make_item(item_id: str, rng: random.Random, family: str, difficulty: str, multiple_choice: bool) -> Item:
    """Sample one item of ``family`` at ``difficulty``; all randomness comes from ``rng``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; available: {sorted(FAMILIES)}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"unknown difficulty {difficulty!r}; available: {DIFFICULTIES}")
    fam = FAMILIES[family]
    template = fam.pick_template(rng, difficulty)
    scene = fam.sample(rng, difficulty, template)
    question, answer, steps = fam.question(scene), fam.answer(scene), fam.steps(scene)
    answer_type = fam.answer_type(scene)
    choices = None
    if multiple_choice:
        others = [o for o in fam.options(scene) if o != answer]
        distractors = rng.sample(others, len(LETTERS) - 1)
        pos = rng.randrange(len(LETTERS))
        choices = [*distractors[:pos], answer, *distractors[pos:]]
        letter = LETTERS[pos]
        question = f"{question} {format_choices(choices)}"
        steps = f"{steps} {answer} is {letter}."
        answer, answer_type = letter, "choice"
    return Item(
        id=item_id,
        question=question,
        answer=answer,
        answer_type=answer_type,
        choices=choices,
        family=family,
        difficulty=difficulty,
        template=template,
        solution=format_solution(steps, answer),
        scene=scene,
    )

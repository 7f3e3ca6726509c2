"""Shapes family: one to three large shapes in a row; read every shape's colour, then answer for one of them.

Template ``colour_of`` ("What color is the circle?"). The worked solution reads each object left to right
("left: red square, right: blue circle.") before naming the asked one, so a response carries several uncertain
tokens (one colour and one shape per object), not only the answer. Objects are large (≥ 17 px at 64 px; one object
spans ~45 px at ``easy``), which keeps the visual part learnable by the ~1M-parameter preset within the CPU budget; the other
families need more capacity or training (docs/data.md).
"""

from __future__ import annotations

import random
from typing import ClassVar

from PIL import Image

from .draw import COLOURS, PALETTE, SHAPES, Canvas
from .family import Family, Scene, r4

_N_OBJECTS = {"easy": 1, "medium": 2, "hard": 3}
_POSITIONS = {1: ("only",), 2: ("left", "right"), 3: ("left", "middle", "right")}


class Shapes(Family):
    name = "shapes"
    templates: ClassVar[dict[str, tuple[str, ...]]] = {
        "easy": ("colour_of",),
        "medium": ("colour_of",),
        "hard": ("colour_of",),
    }

    def sample(self, rng: random.Random, difficulty: str, template: str) -> Scene:
        if template != "colour_of":
            raise ValueError(f"shapes: unknown template {template!r}")
        n = _N_OBJECTS[difficulty]
        answer = rng.choice(COLOURS)  # the answer first, uniformly; the scene is built around it
        others = rng.sample([c for c in COLOURS if c != answer], n - 1)
        shapes = rng.sample(SHAPES, min(n, len(SHAPES)))
        target = shapes[0]
        rest = shapes[1:]  # the asked shape is unique in the image
        items = [(target, answer), *zip(rest, others, strict=True)]
        rng.shuffle(items)
        cell = 0.94 / n
        objects = []
        for k, (shape, colour) in enumerate(items):
            side = cell * rng.uniform(0.72, 0.86)
            slack = (cell - side) / 2
            cx = 0.03 + (k + 0.5) * cell + rng.uniform(-slack, slack) * 0.3
            cy = 0.5 + rng.uniform(-0.25, 0.25) * (1 - side)
            objects.append({"shape": shape, "colour": colour, "x": r4(cx), "y": r4(cy), "size": r4(side)})
        return {
            "family": self.name,
            "template": template,
            "difficulty": difficulty,
            "asked": target,
            "objects": objects,
        }

    def question(self, scene: Scene) -> str:
        return f"What color is the {scene['asked']}?"

    def answer(self, scene: Scene) -> str:
        (obj,) = [o for o in scene["objects"] if o["shape"] == scene["asked"]]
        return obj["colour"]

    def steps(self, scene: Scene) -> str:
        objs = sorted(scene["objects"], key=lambda o: o["x"])
        names = _POSITIONS[len(objs)]
        listed = ", ".join(f"{p}: {o['colour']} {o['shape']}" for p, o in zip(names, objs, strict=True))
        return f"{listed}. the {scene['asked']} is {self.answer(scene)}."

    def answer_type(self, scene: Scene) -> str:
        return "text"

    def options(self, scene: Scene) -> list[str]:
        return list(COLOURS)

    def render(self, scene: Scene, size: int) -> Image.Image:
        canvas = Canvas(size)
        for o in scene["objects"]:
            canvas.shape(o["shape"], o["x"], o["y"], o["size"], PALETTE[o["colour"]])
        return canvas.image()

"""Bar-chart family: a few coloured bars over unit grid lines; read heights, then compare or combine.

Templates: ``tallest`` (colour of the tallest bar), ``range`` (tallest minus shortest), ``sum_two``
(total height of two named bars). Heights are whole grid units.
"""

from __future__ import annotations

import random
from typing import ClassVar

from PIL import Image

from .draw import COLOURS, GRID, INK, PALETTE, Canvas
from .family import Family, Scene

_SPEC = {"easy": (3, 5), "medium": (4, 6), "hard": (5, 8)}  # (bars, max height)
PLOT = {"left": 0.1, "right": 0.96, "top": 0.05, "bottom": 0.93}


class Bars(Family):
    name = "bars"
    templates: ClassVar[dict[str, tuple[str, ...]]] = {d: ("tallest", "range", "sum_two") for d in _SPEC}

    def sample(self, rng: random.Random, difficulty: str, template: str) -> Scene:
        k, top = _SPEC[difficulty]
        colours = rng.sample(COLOURS, k)  # colours[0] plays the special role of each template
        if template == "tallest":
            hi = rng.randint(2, top)
            heights = [hi] + [rng.randint(1, hi - 1) for _ in range(k - 1)]
            query: list[str] = []
        elif template == "range":
            d = rng.randint(1, top - 1)
            lo = rng.randint(1, top - d)
            heights = [lo + d, lo] + [rng.randint(lo, lo + d) for _ in range(k - 2)]
            query = []
        elif template == "sum_two":
            total = rng.randint(2, 2 * top)
            a = rng.randint(max(1, total - top), min(top, total - 1))
            heights = [a, total - a] + [rng.randint(1, top) for _ in range(k - 2)]
            query = colours[:2]
        else:
            raise ValueError(f"bars: unknown template {template!r}")
        bars = [{"colour": c, "height": h} for c, h in zip(colours, heights, strict=True)]
        rng.shuffle(bars)
        return {
            "family": self.name,
            "template": template,
            "difficulty": difficulty,
            "max_height": top,
            "bars": bars,
            "query": query,
        }

    def question(self, scene: Scene) -> str:
        t = scene["template"]
        if t == "tallest":
            return "What color is the tallest bar?"
        if t == "range":
            return "How much taller is the tallest bar than the shortest bar?"
        a, b = scene["query"]
        return f"What is the total height of the {a} and {b} bars?"

    def _height(self, scene: Scene, colour: str) -> int:
        return next(b["height"] for b in scene["bars"] if b["colour"] == colour)

    def answer(self, scene: Scene) -> str:
        t = scene["template"]
        hs = [b["height"] for b in scene["bars"]]
        if t == "tallest":
            return max(scene["bars"], key=lambda b: b["height"])["colour"]
        if t == "range":
            return str(max(hs) - min(hs))
        return str(sum(self._height(scene, c) for c in scene["query"]))

    def steps(self, scene: Scene) -> str:
        t = scene["template"]
        if t == "sum_two":
            a, b = scene["query"]
            ha, hb = self._height(scene, a), self._height(scene, b)
            return f"{a}: {ha}, {b}: {hb}. {ha} + {hb} = {ha + hb}."
        listed = ", ".join(f"{b['colour']}: {b['height']}" for b in scene["bars"])
        if t == "tallest":
            return f"{listed}. tallest: {self.answer(scene)}."
        hs = [b["height"] for b in scene["bars"]]
        return f"{listed}. {max(hs)} - {min(hs)} = {self.answer(scene)}."

    def answer_type(self, scene: Scene) -> str:
        return "text" if scene["template"] == "tallest" else "integer"

    def options(self, scene: Scene) -> list[str]:
        top = scene["max_height"]
        t = scene["template"]
        if t == "tallest":
            return list(COLOURS)
        if t == "range":
            return [str(v) for v in range(1, top)]
        return [str(v) for v in range(2, 2 * top + 1)]

    def render(self, scene: Scene, size: int) -> Image.Image:
        """Grid lines and bar tops sit on whole output pixels, so they stay crisp at any size."""
        canvas = Canvas(size)
        left, right = PLOT["left"], PLOT["right"]
        bottom_px = round(PLOT["bottom"] * size)
        unit_px = max(1, int((PLOT["bottom"] - PLOT["top"]) * size / scene["max_height"]))
        px = 1.0 / size  # one output pixel in unit coordinates
        bottom = bottom_px * px
        for h in range(1, scene["max_height"] + 1):
            y = (bottom_px - h * unit_px) * px
            canvas.rect(left, y, right, y + px, fill=GRID)
        slot = (right - left) / len(scene["bars"])
        for k, b in enumerate(scene["bars"]):
            x0 = left + (k + 0.15) * slot
            canvas.rect(
                x0, bottom - b["height"] * unit_px * px, x0 + 0.7 * slot, bottom, fill=PALETTE[b["colour"]]
            )
        canvas.rect(left - px, PLOT["top"], left, bottom + px, fill=INK)  # y axis
        canvas.rect(left - px, bottom, right, bottom + px, fill=INK)  # x axis
        return canvas.image()

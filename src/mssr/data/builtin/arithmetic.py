"""Arithmetic family: large seven-segment numbers drawn in the image; read them, then add/subtract/multiply.

Templates: ``sum`` (sum of the numbers), ``diff`` (larger minus smaller), ``product`` (of two numbers).
"""

from __future__ import annotations

import random
from typing import ClassVar

from PIL import Image

from .draw import Canvas, digits_width
from .family import Family, Scene, r4, split_total

_SPEC = {
    # (count of numbers, smallest, largest) per template
    "easy": {"sum": (2, 1, 9), "diff": (2, 1, 9)},
    "medium": {"sum": (3, 1, 9), "diff": (2, 1, 20), "product": (2, 2, 9)},
    "hard": {"sum": (2, 10, 49), "diff": (2, 10, 60), "product": (2, 2, 12)},
}


NUMBER_GAP = 0.9  # minimum space between two numbers, in digit heights (digits of one number: 0.25)


def _products(lo: int, hi: int) -> list[int]:
    return sorted({a * b for a in range(lo, hi + 1) for b in range(lo, hi + 1)})


class Arithmetic(Family):
    name = "arithmetic"
    templates: ClassVar[dict[str, tuple[str, ...]]] = {d: tuple(spec) for d, spec in _SPEC.items()}

    def sample(self, rng: random.Random, difficulty: str, template: str) -> Scene:
        n, lo, hi = _SPEC[difficulty][template]
        if template == "sum":
            total = rng.randint(n * lo, n * hi)
            values = split_total(rng, total, n, lo, hi)
        elif template == "diff":
            d = rng.randint(1, hi - lo)
            small = rng.randint(lo, hi - d)
            values = [small, small + d]
            rng.shuffle(values)
        elif template == "product":
            p = rng.choice(_products(lo, hi))
            pairs = [(a, p // a) for a in range(lo, hi + 1) if p % a == 0 and lo <= p // a <= hi]
            values = list(rng.choice(pairs))
        else:
            raise ValueError(f"arithmetic: unknown template {template!r}")
        return {
            "family": self.name,
            "template": template,
            "difficulty": difficulty,
            "numbers": self._layout(rng, values),
        }

    @staticmethod
    def _layout(rng: random.Random, values: list[int]) -> list[dict]:
        """Numbers left to right with at least ``NUMBER_GAP`` digit heights between them, random spacing and
        vertical jitter; digits as large as fit (at most 0.42 of the image side)."""
        widths1 = [digits_width(len(str(v)), 1.0) for v in values]  # widths at unit height
        height = min(0.42, 0.84 / (sum(widths1) + NUMBER_GAP * (len(values) - 1)))
        widths = [w * height for w in widths1]
        slack = 0.92 - sum(widths) - NUMBER_GAP * height * (len(values) - 1)
        cuts = sorted(rng.uniform(0, slack) for _ in range(len(values)))
        out, x = [], 0.04
        for k, (v, w) in enumerate(zip(values, widths, strict=True)):
            x += cuts[k] - (cuts[k - 1] if k else 0.0)
            y = rng.uniform(0.06, 0.94 - height)
            out.append({"value": v, "x": r4(x), "y": r4(y), "height": r4(height)})
            x += w + NUMBER_GAP * height
        return out

    def _values(self, scene: Scene) -> list[int]:
        return [n["value"] for n in sorted(scene["numbers"], key=lambda n: n["x"])]

    def question(self, scene: Scene) -> str:
        return {
            "sum": "What is the sum of the numbers in the image?",
            "diff": "What is the larger number minus the smaller number?",
            "product": "What is the product of the two numbers?",
        }[scene["template"]]

    def answer(self, scene: Scene) -> str:
        v = self._values(scene)
        t = scene["template"]
        if t == "sum":
            return str(sum(v))
        if t == "diff":
            return str(max(v) - min(v))
        return str(v[0] * v[1])

    def steps(self, scene: Scene) -> str:
        v = self._values(scene)
        listed = "numbers: " + ", ".join(map(str, v)) + "."
        t = scene["template"]
        if t == "sum":
            expr = " + ".join(map(str, v))
        elif t == "diff":
            expr = f"{max(v)} - {min(v)}"
        else:
            expr = f"{v[0]} * {v[1]}"
        return f"{listed} {expr} = {self.answer(scene)}."

    def options(self, scene: Scene) -> list[str]:
        n, lo, hi = _SPEC[scene["difficulty"]][scene["template"]]
        t = scene["template"]
        if t == "sum":
            return [str(v) for v in range(n * lo, n * hi + 1)]
        if t == "diff":
            return [str(v) for v in range(1, hi - lo + 1)]
        return [str(v) for v in _products(lo, hi)]

    def render(self, scene: Scene, size: int) -> Image.Image:
        canvas = Canvas(size)
        for n in scene["numbers"]:
            canvas.digits(str(n["value"]), n["x"], n["y"], n["height"])
        return canvas.image()

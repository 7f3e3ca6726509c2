"""Counting family: big coloured shapes on a grid; count two groups and combine, or find the biggest group.

Templates: ``sum_two`` (how many objects are red or blue), ``diff`` (how many more red than blue) and
``most`` (which colour has the most objects). At ``hard`` a group is a colour *and* a shape.
"""

from __future__ import annotations

import random
from typing import ClassVar

from PIL import Image

from .draw import COLOURS, PALETTE, SHAPES, Canvas
from .family import Family, Scene, r4, split_total

_SPEC = {
    # grid cells per side, colours in the image, max objects per group, max sum, max difference
    "easy": {
        "grid": 3,
        "n_colours": 2,
        "max_group": 4,
        "max_sum": 6,
        "max_diff": 3,
        "by_shape": False,
        "distractors": (0, 0),
    },
    "medium": {
        "grid": 3,
        "n_colours": 3,
        "max_group": 3,
        "max_sum": 6,
        "max_diff": 3,
        "by_shape": False,
        "distractors": (1, 3),
    },
    "hard": {
        "grid": 4,
        "n_colours": 4,
        "max_group": 4,
        "max_sum": 8,
        "max_diff": 4,
        "by_shape": True,
        "distractors": (1, 3),
    },
}


def _group_name(target: dict) -> str:
    return f"{target['colour']} {target['shape']}s" if target["shape"] else target["colour"]


def _matches(obj: dict, target: dict) -> bool:
    return obj["colour"] == target["colour"] and (target["shape"] is None or obj["shape"] == target["shape"])


class Counting(Family):
    name = "counting"
    templates: ClassVar[dict[str, tuple[str, ...]]] = {
        "easy": ("sum_two", "diff", "most"),
        "medium": ("sum_two", "diff", "most"),
        "hard": ("sum_two", "diff", "most"),
    }

    # ---- sampling -------------------------------------------------------------------------------------------
    def sample(self, rng: random.Random, difficulty: str, template: str) -> Scene:
        spec = _SPEC[difficulty]
        colours = rng.sample(COLOURS, spec["n_colours"])
        if template == "most":
            return self._sample_most(rng, difficulty, colours)
        if spec["by_shape"]:
            targets = [
                {"colour": colours[0], "shape": rng.choice(SHAPES)},
                {"colour": colours[1], "shape": rng.choice(SHAPES)},
            ]
        else:
            targets = [{"colour": colours[0], "shape": None}, {"colour": colours[1], "shape": None}]
        mg = spec["max_group"]
        if template == "sum_two":
            total = rng.randint(1, spec["max_sum"])
            n1, n2 = split_total(rng, total, 2, 0, mg)
        elif template == "diff":
            d = rng.randint(0, spec["max_diff"])
            n2 = rng.randint(1 if d == 0 else 0, mg - d)  # never an empty image
            n1 = n2 + d
        else:
            raise ValueError(f"counting: unknown template {template!r}")
        groups: list[tuple[str, str | None, int]] = [
            (targets[0]["colour"], targets[0]["shape"], n1),
            (targets[1]["colour"], targets[1]["shape"], n2),
        ]
        # distractor objects: other colours, or (hard) the asked colours with other shapes
        n_cells = spec["grid"] ** 2
        free = n_cells - n1 - n2
        lo, hi = spec["distractors"]
        n_distract = rng.randint(min(lo, free), min(hi, free))
        distract: list[tuple[str, str]] = []
        for _ in range(n_distract):
            while True:
                c = rng.choice(colours)
                s = rng.choice(SHAPES)
                if not any(_matches({"colour": c, "shape": s}, t) for t in targets):
                    break
            distract.append((c, s))
        one_shape = rng.choice(SHAPES) if difficulty == "easy" else None
        items: list[tuple[str, str]] = []
        for colour, shape, n in groups:
            items += [(colour, shape or one_shape or rng.choice(SHAPES)) for _ in range(n)]
        items += [(c, one_shape or s) for c, s in distract]
        return {
            "family": self.name,
            "template": template,
            "difficulty": difficulty,
            "grid": spec["grid"],
            "targets": targets,
            "objects": self._place(rng, spec["grid"], items),
        }

    def _sample_most(self, rng: random.Random, difficulty: str, colours: list[str]) -> Scene:
        spec = _SPEC[difficulty]
        winner = colours[0]
        top = rng.randint(2, spec["max_group"])
        counts = {winner: top}
        for c in colours[1:]:
            counts[c] = rng.randint(0 if len(colours) > 2 else 1, top - 1)
        cap = spec["grid"] ** 2
        while sum(counts.values()) > cap:  # keep within the grid: shrink the largest loser
            loser = max(colours[1:], key=lambda c: counts[c])
            counts[loser] -= 1
        one_shape = rng.choice(SHAPES) if difficulty == "easy" else None
        items = [(c, one_shape or rng.choice(SHAPES)) for c in colours for _ in range(counts[c])]
        return {
            "family": self.name,
            "template": "most",
            "difficulty": difficulty,
            "grid": spec["grid"],
            "targets": [],
            "objects": self._place(rng, spec["grid"], items),
        }

    @staticmethod
    def _place(rng: random.Random, grid: int, items: list[tuple[str, str]]) -> list[dict]:
        # Objects fill 72-86% of their cell (65-80% on the 4x4 grid) and move by at most 30% of the slack, so
        # neighbours stay >= 0.1 cell apart (about 2 px at 64 px) and every object spans ~14+ px at 64 px.
        margin = 0.03
        cell = (1 - 2 * margin) / grid
        lo, hi = (0.72, 0.86) if grid <= 3 else (0.65, 0.8)
        cells = rng.sample(range(grid * grid), len(items))
        objects = []
        for (colour, shape), k in zip(items, cells, strict=True):
            side = cell * rng.uniform(lo, hi)
            slack = (cell - side) / 2
            cx = margin + (k % grid + 0.5) * cell + rng.uniform(-slack, slack) * 0.3
            cy = margin + (k // grid + 0.5) * cell + rng.uniform(-slack, slack) * 0.3
            objects.append({"shape": shape, "colour": colour, "x": r4(cx), "y": r4(cy), "size": r4(side)})
        return objects

    # ---- text -----------------------------------------------------------------------------------------------
    def _counts(self, scene: Scene) -> list[int]:
        return [sum(_matches(o, t) for o in scene["objects"]) for t in scene["targets"]]

    def _colour_counts(self, scene: Scene) -> dict[str, int]:
        present = {o["colour"] for o in scene["objects"]}
        return {c: sum(o["colour"] == c for o in scene["objects"]) for c in COLOURS if c in present}

    def question(self, scene: Scene) -> str:
        t = scene["template"]
        if t == "most":
            return "Which color has the most objects?"
        a, b = scene["targets"]
        if t == "sum_two":
            if a["shape"]:
                return f"How many {_group_name(a)} and {_group_name(b)} are there in total?"
            return f"How many objects are {a['colour']} or {b['colour']}?"
        if a["shape"]:
            return f"How many more {_group_name(a)} than {_group_name(b)} are there?"
        return f"How many more {a['colour']} objects than {b['colour']} objects are there?"

    def answer(self, scene: Scene) -> str:
        if scene["template"] == "most":
            counts = self._colour_counts(scene)
            return max(counts, key=lambda c: counts[c])
        n1, n2 = self._counts(scene)
        return str(n1 + n2 if scene["template"] == "sum_two" else n1 - n2)

    def steps(self, scene: Scene) -> str:
        if scene["template"] == "most":
            counts = self._colour_counts(scene)
            listed = ", ".join(f"{c}: {n}" for c, n in counts.items())
            return f"{listed}. most: {self.answer(scene)}."
        (n1, n2), (a, b) = self._counts(scene), scene["targets"]
        op = "+" if scene["template"] == "sum_two" else "-"
        return f"{_group_name(a)}: {n1}, {_group_name(b)}: {n2}. {n1} {op} {n2} = {self.answer(scene)}."

    def answer_type(self, scene: Scene) -> str:
        return "text" if scene["template"] == "most" else "integer"

    def options(self, scene: Scene) -> list[str]:
        spec = _SPEC[scene["difficulty"]]
        t = scene["template"]
        if t == "most":
            return list(COLOURS)
        if t == "sum_two":
            return [str(v) for v in range(1, spec["max_sum"] + 1)]
        return [str(v) for v in range(0, spec["max_diff"] + 1)]

    def render(self, scene: Scene, size: int) -> Image.Image:
        canvas = Canvas(size)
        for o in scene["objects"]:
            canvas.shape(o["shape"], o["x"], o["y"], o["size"], PALETTE[o["colour"]])
        return canvas.image()

"""Geometry family: a triangle drawn to scale with its two base angles given as large numbers below it.

Templates: ``third_angle`` (two labelled angles, find the third: 180 - a - b) and ``right_angle`` (a right
angle marked with a square, one labelled angle, find the third). Angles are in degrees; the label of a
base angle is drawn under its vertex, so reading both labels and subtracting from 180 solves the item.
"""

from __future__ import annotations

import math
import random
from typing import ClassVar

from PIL import Image

from .draw import INK, Canvas, digits_width
from .family import Family, Scene, r4

# per difficulty: (template, step between angles, smallest angle, largest angle)
_SPEC = {
    "easy": ("third_angle", 10, 30, 100),
    "medium": ("right_angle", 5, 20, 70),
    "hard": ("third_angle", 5, 25, 110),
}
TRI_BOX = (0.08, 0.05, 0.92, 0.66)  # x0, y0, x1, y1 the triangle is fitted into
LABEL_TOP, LABEL_HEIGHT = 0.74, 0.2


def _answers(difficulty: str) -> list[int]:
    template, step, lo, hi = _SPEC[difficulty]
    if template == "right_angle":
        return list(range(lo, hi + 1, step))
    # third angle c feasible when 180 - c splits into two angles within [lo, hi]
    return [c for c in range(lo, hi + 1, step) if 2 * lo <= 180 - c <= 2 * hi]


class Geometry(Family):
    name = "geometry"
    templates: ClassVar[dict[str, tuple[str, ...]]] = {d: (spec[0],) for d, spec in _SPEC.items()}

    def sample(self, rng: random.Random, difficulty: str, template: str) -> Scene:
        spec_template, step, lo, hi = _SPEC[difficulty]
        if template != spec_template:
            raise ValueError(f"geometry: template {template!r} is not used at {difficulty!r}")
        c = rng.choice(_answers(difficulty))
        if template == "right_angle":
            a, b = 90, 180 - 90 - c
        else:
            rest = 180 - c
            a = rng.choice([v for v in range(lo, hi + 1, step) if lo <= rest - v <= hi])
            b = rest - a
        if rng.random() < 0.5:
            a, b = b, a
        return {
            "family": self.name,
            "template": template,
            "difficulty": difficulty,
            "angles": [a, b],
            "vertices": self._vertices(rng, a, b),
        }

    @staticmethod
    def _vertices(rng: random.Random, a: int, b: int) -> list[list[float]]:
        """Left base vertex (angle a), right base vertex (angle b), apex; image coordinates, y down."""
        c = 180 - a - b
        side = math.sin(math.radians(b)) / math.sin(math.radians(c))  # |AC| with base |AB| = 1 (law of sines)
        apex = (side * math.cos(math.radians(a)), side * math.sin(math.radians(a)))
        pts = [(0.0, 0.0), (1.0, 0.0), apex]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        bx0, by0, bx1, by1 = TRI_BOX
        scale = min((bx1 - bx0) / (max(xs) - min(xs)), (by1 - by0) / (max(ys) - min(ys))) * rng.uniform(
            0.85, 1.0
        )
        w, h = (max(xs) - min(xs)) * scale, (max(ys) - min(ys)) * scale
        ox = bx0 + rng.uniform(0, (bx1 - bx0) - w) - min(xs) * scale
        base_y = by1 - rng.uniform(0, 0.3 * ((by1 - by0) - h))
        return [[r4(ox + x * scale), r4(base_y - y * scale)] for x, y in pts]

    def question(self, scene: Scene) -> str:
        if scene["template"] == "right_angle":
            return "The triangle has a right angle and one labeled angle. What is the third angle in degrees?"
        return "Two angles of the triangle are labeled. What is the third angle in degrees?"

    def answer(self, scene: Scene) -> str:
        return str(180 - sum(scene["angles"]))

    def steps(self, scene: Scene) -> str:
        a, b = scene["angles"]
        return f"angles: {a}, {b}. 180 - {a} - {b} = {self.answer(scene)}."

    def options(self, scene: Scene) -> list[str]:
        return [str(v) for v in _answers(scene["difficulty"])]

    def render(self, scene: Scene, size: int) -> Image.Image:
        canvas = Canvas(size)
        verts = [tuple(v) for v in scene["vertices"]]
        canvas.polygon(verts, outline=INK, width=max(0.025, 2.0 / size))
        for box in self.label_boxes(scene):
            canvas.digits(box["text"], box["x"], LABEL_TOP, LABEL_HEIGHT)
        for k, angle in enumerate(scene["angles"]):
            if angle == 90:
                self._right_marker(canvas, verts, k)
        return canvas.image()

    @staticmethod
    def label_boxes(scene: Scene) -> list[dict]:
        """Label positions: centred under their base vertex, pushed apart if they would touch."""
        gap = 0.9 * LABEL_HEIGHT  # well apart from the 0.25-height gap between digits of one number
        boxes = []
        for k, angle in enumerate(scene["angles"]):
            if angle == 90:
                continue
            w = digits_width(len(str(angle)), LABEL_HEIGHT)
            boxes.append({"text": str(angle), "x": scene["vertices"][k][0] - w / 2, "w": w})
        if len(boxes) == 2:
            left, right = boxes
            overlap = left["x"] + left["w"] + gap - right["x"]
            if overlap > 0:
                left["x"] -= overlap / 2
                right["x"] += overlap / 2
        for b in boxes:
            b["x"] = min(max(b["x"], 0.02), 0.98 - b["w"])
        if len(boxes) == 2 and boxes[0]["x"] + boxes[0]["w"] + gap > boxes[1]["x"]:
            # clamping at an edge can re-create an overlap: lay the pair out from that edge instead
            if boxes[0]["x"] <= 0.02:
                boxes[1]["x"] = boxes[0]["x"] + boxes[0]["w"] + gap
            else:
                boxes[0]["x"] = boxes[1]["x"] - gap - boxes[0]["w"]
        return boxes

    @staticmethod
    def _right_marker(canvas: Canvas, verts: list[tuple[float, float]], k: int) -> None:
        """A small square in the corner of the right angle at vertex k."""
        v = verts[k]
        s = 0.09
        units = []
        for o in (verts[j] for j in range(3) if j != k):
            dx, dy = o[0] - v[0], o[1] - v[1]
            n = math.hypot(dx, dy)
            units.append((dx / n * s, dy / n * s))
        (ux, uy), (wx, wy) = units
        corner = [(v[0] + ux, v[1] + uy), (v[0] + ux + wx, v[1] + uy + wy), (v[0] + wx, v[1] + wy)]
        canvas.line(corner, fill=INK, width=max(0.015, 1.5 / canvas.size))

"""Reference checks written independently of the generator: a question-text solver over scene dicts, and
pixel analysis of rendered images (colour blobs, bar heights, seven-segment OCR). Nothing here imports the
generator's family code; only the palette and a few layout constants are shared, as a reader of the
rendered image would know them."""

from __future__ import annotations

import math
import re
from collections import Counter, deque

import numpy as np

# ---- solving from the scene and the question text ----------------------------------------------------------

CHOICES_RE = re.compile(r"Choices: (A\. .+?) (B\. .+?) (C\. .+?) (D\. .+)$")


def parse_choices(question: str) -> list[str] | None:
    m = CHOICES_RE.search(question)
    if m is None:
        return None
    return [g[3:] for g in m.groups()]


def solve(question: str, scene: dict) -> str:
    """The free-form answer implied by the question text and the scene (not the generator's code)."""
    q = CHOICES_RE.sub("", question).strip()
    objects = scene.get("objects", [])

    def count(colour, shape=None):
        return sum(o["colour"] == colour and (shape is None or o["shape"] == shape) for o in objects)

    if m := re.fullmatch(r"How many objects are (\w+) or (\w+)\?", q):
        return str(count(m[1]) + count(m[2]))
    if m := re.fullmatch(r"How many (\w+) (\w+)s and (\w+) (\w+)s are there in total\?", q):
        return str(count(m[1], m[2]) + count(m[3], m[4]))
    if m := re.fullmatch(r"How many more (\w+) objects than (\w+) objects are there\?", q):
        return str(count(m[1]) - count(m[2]))
    if m := re.fullmatch(r"How many more (\w+) (\w+)s than (\w+) (\w+)s are there\?", q):
        return str(count(m[1], m[2]) - count(m[3], m[4]))
    if q == "Which color has the most objects?":
        ranked = Counter(o["colour"] for o in objects).most_common()
        assert len(ranked) == 1 or ranked[0][1] > ranked[1][1], "tie for the most objects"
        return ranked[0][0]
    if q == "What is the sum of the numbers in the image?":
        return str(sum(n["value"] for n in scene["numbers"]))
    if q == "What is the larger number minus the smaller number?":
        vals = [n["value"] for n in scene["numbers"]]
        assert len(vals) == 2
        return str(max(vals) - min(vals))
    if q == "What is the product of the two numbers?":
        a, b = (n["value"] for n in scene["numbers"])
        return str(a * b)
    heights = {b["colour"]: b["height"] for b in scene.get("bars", [])}
    if q == "What color is the tallest bar?":
        top = max(heights.values())
        winners = [c for c, h in heights.items() if h == top]
        assert len(winners) == 1, "tie for the tallest bar"
        return winners[0]
    if q == "How much taller is the tallest bar than the shortest bar?":
        return str(max(heights.values()) - min(heights.values()))
    if m := re.fullmatch(r"What is the total height of the (\w+) and (\w+) bars\?", q):
        return str(heights[m[1]] + heights[m[2]])
    if q in (
        "Two angles of the triangle are labeled. What is the third angle in degrees?",
        "The triangle has a right angle and one labeled angle. What is the third angle in degrees?",
    ):
        return str(180 - sum(scene["angles"]))
    if m := re.fullmatch(r"What color is the (\w+)\?", q):
        (obj,) = [o for o in objects if o["shape"] == m[1]]  # the asked shape must be unique
        return obj["colour"]
    raise AssertionError(f"no reference solver for question {q!r}")


def triangle_angles(vertices: list[list[float]]) -> list[float]:
    """Interior angles (degrees) at each vertex, from coordinates."""
    out = []
    for k in range(3):
        p, q, r = vertices[k], vertices[(k + 1) % 3], vertices[(k + 2) % 3]
        v1 = (q[0] - p[0], q[1] - p[1])
        v2 = (r[0] - p[0], r[1] - p[1])
        cos = (v1[0] * v2[0] + v1[1] * v2[1]) / (math.hypot(*v1) * math.hypot(*v2))
        out.append(math.degrees(math.acos(max(-1.0, min(1.0, cos)))))
    return out


# ---- pixel analysis -----------------------------------------------------------------------------------------


def components(mask: np.ndarray, connectivity: int = 4) -> list[list[tuple[int, int]]]:
    """Connected components of a boolean mask (BFS), each a list of (row, col)."""
    seen = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    steps = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    comps = []
    for r0, c0 in zip(*np.nonzero(mask)):
        if seen[r0, c0]:
            continue
        seen[r0, c0] = True
        queue, comp = deque([(r0, c0)]), []
        while queue:
            r, c = queue.popleft()
            comp.append((r, c))
            for dr, dc in steps:
                rr, cc = r + dr, c + dc
                if 0 <= rr < h and 0 <= cc < w and mask[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    queue.append((rr, cc))
        comps.append(comp)
    return comps


def colour_mask(img: np.ndarray, rgb: tuple[int, int, int], tol: float = 60.0) -> np.ndarray:
    return np.linalg.norm(img.astype(float) - np.array(rgb, dtype=float), axis=-1) < tol


def count_blobs(img: np.ndarray, palette: dict[str, tuple[int, int, int]], min_px: int = 6) -> Counter:
    """Number of separate same-colour blobs per palette colour."""
    out: Counter = Counter()
    for name, rgb in palette.items():
        n = sum(len(c) >= min_px for c in components(colour_mask(img, rgb)))
        if n:
            out[name] = n
    return out


# Seven-segment decoding: which segments are lit -> digit. Segment probe points are relative to the digit box.
_SEGMENT_DIGITS = {
    "abcdef": "0",
    "bc": "1",
    "abdeg": "2",
    "abcdg": "3",
    "bcfg": "4",
    "acdfg": "5",
    "acdefg": "6",
    "abc": "7",
    "abcdefg": "8",
    "abcdfg": "9",
}


def read_digit(dark: np.ndarray, box: tuple[int, int, int, int]) -> str:
    r0, c0, r1, c1 = box  # inclusive rows/cols
    h, w = r1 - r0 + 1, c1 - c0 + 1
    if w < 0.4 * h:
        return "1"
    t = max(1.0, 0.17 * h)

    def lit(y: float, x: float) -> bool:
        ry, rx = round(r0 + y), round(c0 + x)
        win = dark[max(ry - 1, r0) : ry + 2, max(rx - 1, c0) : rx + 2]
        return win.mean() > 0.45

    probes = {
        "a": (t / 2 - 0.5, w / 2 - 0.5),
        "g": (h / 2 - 0.5, w / 2 - 0.5),
        "d": (h - t / 2 - 0.5, w / 2 - 0.5),
        "f": (h / 4, t / 2 - 0.5),
        "e": (3 * h / 4 - 0.5, t / 2 - 0.5),
        "b": (h / 4, w - t / 2 - 0.5),
        "c": (3 * h / 4 - 0.5, w - t / 2 - 0.5),
    }
    on = "".join(sorted(s for s, (y, x) in probes.items() if lit(y, x)))
    return _SEGMENT_DIGITS.get(on, "?")


def read_numbers(img: np.ndarray, row_from: int = 0) -> list[int | str]:
    """Numbers written in dark seven-segment digits, left to right (digits of one number sit close)."""
    dark = img.astype(float).mean(axis=-1) < 110
    dark[:row_from] = False
    boxes = []
    for comp in components(dark, connectivity=8):
        if len(comp) < 4:
            continue
        rows, cols = zip(*comp)
        boxes.append((min(rows), min(cols), max(rows), max(cols)))
    boxes.sort(key=lambda b: b[1])
    numbers: list[list[tuple]] = []
    for b in boxes:
        h = b[2] - b[0] + 1
        if numbers:
            last = numbers[-1][-1]
            same_row = abs(last[0] - b[0]) <= 0.25 * h and abs(last[2] - b[2]) <= 0.25 * h
            if same_row and b[1] - last[3] <= 0.8 * h:
                numbers[-1].append(b)
                continue
        numbers.append([b])
    out: list[int | str] = []
    for group in numbers:
        text = "".join(read_digit(dark, b) for b in group)
        out.append(int(text) if text.isdigit() else text)
    return out

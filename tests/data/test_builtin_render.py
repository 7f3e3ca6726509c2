"""The rendered image really shows the scene: blob counts, bar heights and seven-segment numbers are read back
from the pixels with the independent analysis in ``independent.py``."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from mssr.data.builtin import DIFFICULTIES, make_item
from mssr.data.builtin.draw import PALETTE

from .independent import colour_mask, components, count_blobs, read_numbers

N_PER_CASE = 25


def items(family: str, difficulty: str, n: int = N_PER_CASE):
    return [
        make_item("x", random.Random(f"render-{family}-{difficulty}-{k}"), family, difficulty, False)
        for k in range(n)
    ]


@pytest.mark.parametrize("size", [64, 112])
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_counting_blobs_match_scene(difficulty, size):
    for item in items("counting", difficulty):
        img = np.asarray(item.render(size))
        assert img.shape == (size, size, 3)
        expected = Counter(o["colour"] for o in item.scene["objects"])
        assert count_blobs(img, PALETTE) == expected, item.scene


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_bar_heights_match_scene(difficulty):
    size = 64
    for item in items("bars", difficulty):
        img = np.asarray(item.render(size)).astype(float)
        grey = np.linalg.norm(img - 200.0, axis=-1) < 8
        grid_rows = [r for r in range(size) if grey[r].sum() > 0.12 * size]
        lines = [
            r for k, r in enumerate(grid_rows) if k == 0 or r != grid_rows[k - 1] + 1
        ]  # first row of each line
        assert len(lines) == item.scene["max_height"]
        dark = img.mean(axis=-1) < 80
        axis_row = max(r for r in range(size) if dark[r].sum() > 0.5 * size)
        unit = (axis_row - lines[0]) / len(lines)
        measured = []
        for name, rgb in PALETTE.items():
            mask = colour_mask(img, rgb)
            if mask.sum() < 4:
                continue
            rows, cols = np.nonzero(mask)
            measured.append((cols.mean(), name, (rows.max() - rows.min() + 1) / unit))
        measured.sort()
        assert [n for _, n, _ in measured] == [b["colour"] for b in item.scene["bars"]]  # left to right
        for (_, name, h), bar in zip(measured, item.scene["bars"], strict=True):
            assert abs(h - bar["height"]) < 0.35, (name, h, bar)


@pytest.mark.parametrize("size", [64, 112])
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_arithmetic_numbers_are_legible(difficulty, size):
    for item in items("arithmetic", difficulty):
        img = np.asarray(item.render(size))
        expected = [n["value"] for n in sorted(item.scene["numbers"], key=lambda n: n["x"])]
        assert read_numbers(img) == expected, item.scene


@pytest.mark.parametrize("size", [64, 112])
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_geometry_labels_are_legible(difficulty, size):
    for item in items("geometry", difficulty):
        img = np.asarray(item.render(size))
        labels = read_numbers(img, row_from=int(0.71 * size))
        assert labels == [a for a in item.scene["angles"] if a != 90], item.scene
        if 90 in item.scene["angles"]:
            assert len(labels) == 1 and 180 - 90 - labels[0] == int(item.answer)
        else:
            assert 180 - sum(labels) == int(item.answer)
        # the triangle's outline is drawn above the labels
        outline = np.asarray(item.render(size)).mean(axis=-1)[: int(0.7 * size)] < 110
        assert len([c for c in components(outline, 8) if len(c) > size]) >= 1


def test_render_is_deterministic_and_size_configurable():
    item = make_item("x", random.Random(5), "bars", "medium", True)
    assert item.render(80).tobytes() == item.render(80).tobytes()
    assert item.render(56).size == (56, 56)
    with pytest.raises(ValueError, match="image_size"):
        item.render(8)

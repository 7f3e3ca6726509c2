"""Drawing primitives for the built-in tasks: palette, a supersampled canvas, seven-segment digits.

Everything is drawn in unit coordinates (0..1 on both axes, y downwards) on a canvas ``SUPERSAMPLE`` times
larger than the output and then area-averaged down, so edges are clean at 56-112 px and the pixels depend
only on the scene and the size (no fonts, so no dependence on the installed FreeType).
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

SUPERSAMPLE = 4
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
GRID = (200, 200, 200)

# High-contrast colours on white; names are the answer words of the colour questions.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (225, 25, 25),
    "green": (20, 150, 40),
    "blue": (30, 70, 230),
    "orange": (245, 145, 0),
    "purple": (140, 40, 185),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")

# Seven-segment encoding: a=top, b=top right, c=bottom right, d=bottom, e=bottom left, f=top left, g=middle.
SEGMENTS: dict[str, str] = {
    "0": "abcdef",
    "1": "bc",
    "2": "abged",
    "3": "abgcd",
    "4": "fgbc",
    "5": "afgcd",
    "6": "afgedc",
    "7": "abc",
    "8": "abcdefg",
    "9": "abcdfg",
}
DIGIT_ASPECT = 0.6  # width / height of one digit
DIGIT_GAP = 0.25  # gap between digits, as a fraction of the digit height
STROKE = 0.17  # stroke thickness, as a fraction of the digit height


class Canvas:
    """A white square canvas addressed in unit coordinates; :meth:`image` returns the downsampled RGB."""

    def __init__(self, size: int) -> None:
        if size < 16:
            raise ValueError(f"image_size must be >= 16 px, got {size}")
        self.size = size
        self.big = size * SUPERSAMPLE
        self._img = Image.new("RGB", (self.big, self.big), BACKGROUND)
        self.draw = ImageDraw.Draw(self._img)

    def px(self, v: float) -> float:
        return v * self.big

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill, outline=None, width: float = 0) -> None:
        box = [self.px(x0), self.px(y0), self.px(x1) - 1, self.px(y1) - 1]
        self.draw.rectangle(
            box, fill=fill, outline=outline, width=max(1, round(self.px(width))) if width else 0
        )

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, fill) -> None:
        self.draw.ellipse([self.px(x0), self.px(y0), self.px(x1) - 1, self.px(y1) - 1], fill=fill)

    def polygon(self, pts: Sequence[tuple[float, float]], fill=None, outline=None, width: float = 0) -> None:
        xy = [(self.px(x), self.px(y)) for x, y in pts]
        if fill is not None:
            self.draw.polygon(xy, fill=fill)
        if outline is not None:
            w = max(1, round(self.px(width)))
            self.draw.line([*xy, xy[0], xy[1]], fill=outline, width=w, joint="curve")

    def line(self, pts: Sequence[tuple[float, float]], fill, width: float) -> None:
        self.draw.line(
            [(self.px(x), self.px(y)) for x, y in pts], fill=fill, width=max(1, round(self.px(width)))
        )

    def shape(self, kind: str, cx: float, cy: float, side: float, fill) -> None:
        """A filled circle, square or upward triangle of the given side, centred at (cx, cy)."""
        h = side / 2
        if kind == "circle":
            self.ellipse(cx - h, cy - h, cx + h, cy + h, fill)
        elif kind == "square":
            self.rect(cx - h, cy - h, cx + h, cy + h, fill)
        elif kind == "triangle":
            self.polygon([(cx, cy - h), (cx + h, cy + h), (cx - h, cy + h)], fill=fill)
        else:
            raise ValueError(f"unknown shape {kind!r}")

    def digits(self, text: str, x: float, y: float, height: float, fill=INK) -> None:
        """Seven-segment digits with their top-left corner at (x, y), snapped to whole output pixels so
        strokes stay crisp (at least 2 px thick)."""
        n = self.size
        h = max(7, round(height * n))
        w = max(4, round(h * DIGIT_ASPECT))
        t = max(2, round(h * STROKE))
        gap = max(2, round(h * DIGIT_GAP))
        x_px, y_px = round(x * n), round(y * n)
        m0 = y_px + (h - t) // 2  # top row of the middle bar
        for k, ch in enumerate(text):
            x0 = x_px + k * (w + gap)
            boxes = {
                "a": (x0, y_px, x0 + w, y_px + t),
                "g": (x0, m0, x0 + w, m0 + t),
                "d": (x0, y_px + h - t, x0 + w, y_px + h),
                "f": (x0, y_px, x0 + t, m0 + t),
                "e": (x0, m0, x0 + t, y_px + h),
                "b": (x0 + w - t, y_px, x0 + w, m0 + t),
                "c": (x0 + w - t, m0, x0 + w, y_px + h),
            }
            for seg in SEGMENTS[ch]:
                x0b, y0b, x1b, y1b = boxes[seg]
                self.rect(x0b / n, y0b / n, x1b / n, y1b / n, fill=fill)

    def image(self) -> Image.Image:
        return self._img.resize((self.size, self.size), Image.Resampling.BOX)


def digits_width(n_digits: int, height: float) -> float:
    """Width in unit coordinates of ``n_digits`` seven-segment digits of the given height."""
    return n_digits * height * DIGIT_ASPECT + (n_digits - 1) * height * DIGIT_GAP

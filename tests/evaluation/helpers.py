"""Helpers for the evaluation tests: images, a fake processor and a fake engine (no model needed)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace

from PIL import Image

HERE = Path(__file__).resolve().parent
PARITY_REWARD = f"{HERE / 'plugin_rewards.py'}:char_parity"

COLORS = {"red": (255, 0, 0), "green": (0, 200, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}


def png_bytes(color: str = "red", size: tuple[int, int] = (24, 16), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, COLORS[color]).save(buf, format=fmt)
    return buf.getvalue()


def save_png(path: Path, color: str = "red", size: tuple[int, int] = (24, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(color, size))
    return path


def center_color(img: Image.Image) -> tuple[int, int, int]:
    return img.getpixel((img.width // 2, img.height // 2))


class FakeProcessor:
    """Enough of a processor for :func:`mssr.rollout.prompting.records_to_prompts`: a plain chat template."""

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        parts = []
        for m in messages:
            content = m["content"]
            if isinstance(content, list):
                content = "".join("<img>" if c["type"] == "image" else c["text"] for c in content)
            parts.append(f"{m['role']}: {content}")
        return "\n".join(parts) + ("\nassistant:" if add_generation_prompt else "")


class FakeEngine:
    """Answers each prompt with ``respond(prompt_text, sample_index)``; records every prompt it generated for.

    ``interrupt_after``: raise ``KeyboardInterrupt`` (what Ctrl-C raises) at that call, before answering.
    """

    def __init__(self, respond, interrupt_after: int | None = None):
        self.respond = respond
        self.interrupt_after = interrupt_after
        self.calls: list[list[str]] = []
        self.kwargs: list[dict] = []

    def generate(self, prompts, *, n=1, **kwargs):
        import torch

        if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.calls.append([p.text for p in prompts])
        self.kwargs.append({"n": n, **kwargs})
        texts = [self.respond(p.text, j) for p in prompts for j in range(n)]
        return SimpleNamespace(
            response_text=texts,
            response_mask=torch.ones(len(texts), 4),
            truncated=torch.zeros(len(texts), dtype=torch.bool),
        )


def item_number(prompt_text: str) -> int:
    """Fixture questions read 'Question number 7: ...'."""
    return int(re.search(r"Question number (\d+)", prompt_text).group(1))

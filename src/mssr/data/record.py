"""The in-memory form of one dataset row, shared by the built-in task and real datasets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

ANSWER_TYPES: tuple[str, ...] = ("integer", "float", "text", "choice")
IMAGE_PLACEHOLDER = "<image>"
CHOICE_LETTERS = "ABCDEFGHIJ"


class DataError(ValueError):
    """A dataset file or row that cannot be read; the message names the file and the line/row."""


@dataclass
class Record:
    """One prompt: images + question + verifiable answer.

    ``question`` carries no ``<image>`` placeholder (images go before the text, in order). For
    ``answer_type == "choice"`` the answer is a letter (``A``, ``B``, ...) and ``choices`` lists the option
    texts in letter order; otherwise ``choices`` is ``None``. ``extra`` holds every other column of the row
    (e.g. ``family``, ``difficulty``, ``solution``, ``scene`` for the built-in task).
    """

    id: str
    question: str
    images: list[Image.Image]
    answer: str
    answer_type: str
    choices: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.answer_type not in ANSWER_TYPES:
            raise ValueError(f"record {self.id}: answer_type {self.answer_type!r} not in {ANSWER_TYPES}")

    def to_columns(self) -> dict[str, Any]:
        """A flat dict of the row: what reward functions receive (extras first, core fields win)."""
        cols = dict(self.extra)
        cols.update(
            id=self.id,
            question=self.question,
            images=self.images,
            answer=self.answer,
            answer_type=self.answer_type,
            choices=list(self.choices) if self.choices is not None else None,
        )
        return cols


class RecordList(list):
    """A list of :class:`Record` that also remembers the rows skipped with ``on_error="skip"``."""

    def __init__(self, records=(), skipped: list[str] | None = None) -> None:
        super().__init__(records)
        self.skipped: list[str] = list(skipped or [])

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

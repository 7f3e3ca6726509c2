"""Argument types shared by the sub-commands: a bad value is refused by argparse in one line (exit 2), before any
work starts, instead of failing late with a traceback or being taken silently."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line (``mssr grade: error: …``) and exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"must be a finite number{' of seconds' if what == 'seconds' else ''} > 0, got {text!r}"
        )
    return value


def positive_seconds(text: str) -> float:
    """A finite number of seconds > 0 (a deadline of 0 times every item out; nan or inf disables it)."""
    return _positive_finite(text, "seconds")


def positive_number(text: str) -> float:
    """A finite number > 0."""
    return _positive_finite(text, "a number")


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def output_file(text: str) -> Path:
    """A file to write: not an existing directory (checked before the work that fills it)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file name")
    return path


def output_dir(text: str) -> Path:
    """A directory to write into: not an existing file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a directory")
    return path

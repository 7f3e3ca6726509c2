"""Per-item results on disk, written so that an interrupted evaluation resumes without re-evaluating or
losing an item.

Layout of an evaluation directory::

    OUT/run.json                  model, label, protocol (decoding, instruction, grading), benchmark sources
    OUT/results/<benchmark>.jsonl one line per item: id, gold answer, n samples (response, extracted answer,
                                  reason, verdict, score, truncated, tokens), c correct, time
    OUT/summary.json, summary.md  written at the end (recomputed from the JSONL files by ``--compare``)

Each batch of items is appended as whole lines in one write, then flushed and fsynced. A run killed during
a write leaves at most one torn last line: :meth:`ResultStore.load` drops it (truncating the file back to its
last complete line), so those items are evaluated again; every complete line is kept and never redone. A
malformed line anywhere else is corruption and raises, naming the file and line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class ResultsError(ValueError):
    """A results file or evaluation directory that cannot be resumed (corrupt, or another protocol)."""


class ResultStore:
    """Append-only JSONL of per-item results, keyed by item ``id``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, dict[str, Any]]:
        """The complete rows already written, by id (repairs a torn last line, see the module docstring)."""
        if not self.path.is_file():
            return {}
        raw = self.path.read_bytes()
        rows: dict[str, dict[str, Any]] = {}
        good_end = 0
        pos = 0
        lineno = 0
        while pos < len(raw):
            nl = raw.find(b"\n", pos)
            end = len(raw) if nl < 0 else nl + 1
            line = raw[pos:end]
            lineno += 1
            torn = nl < 0
            try:
                row = json.loads(line.decode("utf-8")) if line.strip() else None
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                if torn:
                    break  # the last write was cut short: drop it
                raise ResultsError(
                    f"{self.path}: line {lineno} is not valid JSON ({exc}); the file is corrupt"
                ) from None
            if torn and row is not None:
                torn = False  # a complete row that only lacks its newline
            if row is not None:
                if not isinstance(row, dict) or "id" not in row:
                    raise ResultsError(f"{self.path}: line {lineno} is not a result row with an 'id'")
                if row["id"] in rows:
                    raise ResultsError(f"{self.path}: line {lineno}: item {row['id']!r} appears twice")
                rows[str(row["id"])] = row
            good_end = end
            pos = end
        if good_end < len(raw) or (raw and not raw.endswith(b"\n")):
            with self.path.open("r+b") as fh:
                fh.truncate(good_end)
                if good_end and not raw[:good_end].endswith(b"\n"):
                    fh.seek(good_end)
                    fh.write(b"\n")
        return rows

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Write ``rows`` as complete lines in one write, then flush and fsync."""
        blob = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
        if not blob:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())

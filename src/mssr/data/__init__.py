"""Datasets: the :class:`Record` every layer consumes, readers for real datasets, and the built-in task
(:mod:`mssr.data.builtin`). On-disk format and placeholder convention: ``docs/data.md``."""

from .loader import Columns, load_records, read_jsonl, resolve_split_file
from .record import ANSWER_TYPES, IMAGE_PLACEHOLDER, DataError, Record, RecordList

__all__ = [
    "ANSWER_TYPES",
    "IMAGE_PLACEHOLDER",
    "Columns",
    "DataError",
    "Record",
    "RecordList",
    "load_records",
    "read_jsonl",
    "resolve_split_file",
]

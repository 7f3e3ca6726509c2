"""Datasets: the :class:`Record` every layer consumes, readers for real datasets, and the built-in task
(:mod:`mssr.data.builtin`); :func:`load_source` also reads save_to_disk directories, Hugging Face hub ids and
in-memory datasets. On-disk format and placeholder convention: ``docs/data.md``."""

from .loader import Columns, load_records, read_jsonl, resolve_split_file
from .record import ANSWER_TYPES, IMAGE_PLACEHOLDER, DataError, Record, RecordList
from .sources import load_source, resolve_source

__all__ = [
    "ANSWER_TYPES",
    "IMAGE_PLACEHOLDER",
    "Columns",
    "DataError",
    "Record",
    "RecordList",
    "load_records",
    "load_source",
    "read_jsonl",
    "resolve_source",
    "resolve_split_file",
]

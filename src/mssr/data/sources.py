"""Where a dataset comes from: local files, a ``save_to_disk`` directory, a Hugging Face hub id, or memory.

``data.train`` / ``data.val`` (and ``mssr data inspect``) take any of::

    DIR  or  DIR@split              a directory of {split}.jsonl / .parquet / .json files (docs/data.md)
    FILE                            one such file
    DIR  or  DIR@split              a directory written by datasets' save_to_disk (Dataset or DatasetDict)
    owner/name@split                a Hugging Face dataset id (EasyR1's ``data.train_files`` form)

and the Python API also takes a ``datasets.Dataset`` / ``DatasetDict`` or a list of dicts / Records. Every
source goes through the same row parser (:func:`mssr.data.loader.parse_row`), so column names, image forms
and errors are the same everywhere. ``datasets`` is imported only for the save_to_disk and hub forms.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .loader import (
    SPLIT_ALIASES,
    Columns,
    check_on_error,
    collect_records,
    iter_file_rows,
    resolve_split_file,
)
from .record import DataError, RecordList

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class Source:
    """A resolved dataset reference. ``kind``: ``files`` (a directory of split files), ``file``, ``disk`` (a
    save_to_disk directory), ``hub`` or ``memory``; ``split`` is the one named with ``@split``, if any."""

    kind: str
    label: str
    path: Path | None = None
    name: str | None = None  # hub id
    split: str | None = None
    obj: Any = None  # memory: the object itself


def resolve_source(spec: Any) -> Source:
    """Decide what ``spec`` names. A string that is an existing path is local (``@split`` may follow it);
    otherwise ``owner/name[@split]`` (or ``hf://datasets/owner/name``) is a hub id."""
    if not isinstance(spec, str | os.PathLike):
        return Source("memory", label=type(spec).__name__, obj=spec)
    text = str(spec).strip()
    candidates = [(text, None)]
    if "@" in text:
        base, _, at = text.rpartition("@")
        candidates.append((base, at))
    for candidate, split in candidates:
        p = Path(candidate).expanduser()
        if p.exists():
            return Source(_local_kind(p), label=text, path=p, split=split or None)
    name, _, split = text.partition("@")
    name = name.removeprefix("hf://datasets/").removeprefix("hf://").strip("/")
    looks_local = text.startswith((".", "/", "~")) or Path(name).suffix in (".jsonl", ".json", ".parquet")
    if HUB_ID.match(name) and not looks_local:
        return Source("hub", label=text, name=name, split=split or None)
    raise DataError(
        f"{text}: no such dataset file or directory (nor a Hugging Face dataset id like owner/name@split)"
    )


def _local_kind(p: Path) -> str:
    if p.is_file():
        return "file"
    if (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():
        return "disk"
    return "files"


def split_names(spec: Any) -> list[str] | None:
    """The splits a local source holds (None: not known without loading, e.g. a hub id or one file)."""
    try:
        src = resolve_source(spec)
    except DataError:
        return None
    if src.kind == "files":
        return sorted(
            f.stem
            for f in src.path.iterdir()
            if f.suffix in (".jsonl", ".parquet", ".json") and f.is_file() and f.name != "manifest.json"
        )
    if src.kind == "disk" and (src.path / "dataset_dict.json").is_file():
        import json

        return list(json.loads((src.path / "dataset_dict.json").read_text()).get("splits", []))
    if src.kind == "memory" and isinstance(src.obj, dict):
        return list(src.obj)
    return None


def without_split(spec: Any) -> Any:
    """``spec`` without its ``@split`` (``DIR@train`` -> ``DIR``, ``owner/name@train`` -> ``owner/name``)."""
    src = resolve_source(spec)
    if src.split is None:
        return spec
    return str(src.path) if src.path is not None else src.name


def has_split(spec: Any, split: str | None) -> bool:
    names = split_names(spec)
    return bool(split and names and any(n in names for n in SPLIT_ALIASES.get(split, (split,))))


@dataclass
class SplitRows:
    """The raw rows of one split of a source, before parsing."""

    label: str  # names the split in messages (a file path, DIR@split, owner/name@split, train_dataset)
    split: str | None  # the split actually read (None: a single file or Dataset)
    rows: Iterator[tuple[tuple[str, str], Any]]  # ((label, "row N" / "line N"), raw row)
    image_root: Path  # where relative image paths resolve
    id_prefix: str  # default ids are f"{id_prefix}-{N}"
    skipped: list[str]  # rows that could not even be read (malformed JSON lines), with on_error="skip"
    features: dict[str, str] | None = None  # column -> datasets feature type, for datasets sources


def open_split(
    spec: Any, split: str | None = None, *, on_error: str = "raise", label: str | None = None
) -> SplitRows:
    """The rows of ``spec``'s ``split`` (a split named in ``spec`` with ``@split`` wins over ``split``; a single
    file or a single saved Dataset ignores ``split``)."""
    src = resolve_source(spec)
    if label and src.kind == "memory":
        src = Source("memory", label=label, obj=src.obj)
    split = src.split or split
    skipped: list[str] = []
    if src.kind in ("file", "files"):
        path = resolve_split_file(src.path, split if src.kind == "files" else src.split)
        return SplitRows(
            str(path), path.stem, iter_file_rows(path, on_error, skipped), path.parent, path.stem, skipped
        )
    if src.kind == "disk":
        datasets = require_datasets(f"reading the save_to_disk directory {src.path}")
        try:
            obj = datasets.load_from_disk(str(src.path))
        except Exception as exc:  # any failure is reported as a data error naming the path
            raise DataError(
                f"{src.path}: cannot read as a save_to_disk dataset ({_first_line(exc)})"
            ) from exc
        obj, picked = _pick_split(obj, split, str(src.path))
        name = f"{src.path}" + (f"@{picked}" if picked else "")
        root = src.path
    elif src.kind == "hub":
        if not split:
            raise DataError(f"{src.label}: name the split of the Hugging Face dataset, e.g. {src.name}@train")
        obj, picked = load_hub(src.name, split), split
        name, root = f"{src.name}@{split}", Path.cwd()
    else:
        obj, picked = src.obj, None
        if isinstance(obj, dict) and not _is_row(obj):  # a DatasetDict or {split: rows}
            obj, picked = _pick_split(obj, split, src.label)
        name, root = src.label + (f"[{picked}]" if picked else ""), Path.cwd()
    if _is_hf_dataset(obj):
        features = {k: _feature_name(f) for k, f in obj.features.items()} if obj.features else None
        rows = _iter_dataset(obj, name)
    elif isinstance(obj, list | tuple):
        features, rows = None, (((name, f"item {i}"), row) for i, row in enumerate(obj))
    else:
        raise DataError(
            f"a dataset must be a path, a Hugging Face dataset id, a datasets.Dataset or a list of dicts; "
            f"got {type(obj).__name__}"
        )
    return SplitRows(name, picked, rows, root, picked or "row", skipped, features)


def load_source(
    spec: Any,
    split: str | None = None,
    *,
    columns: Columns | None = None,
    on_error: str = "raise",
    image_root: str | Path | None = None,
    limit: int | None = None,
    label: str | None = None,
) -> RecordList:
    """Records of ``spec``'s ``split`` (see :func:`open_split`). ``on_error``: ``raise`` at the first bad row
    or ``skip`` and count it (``.skipped``); ``limit``: stop after that many good records; ``label`` names an
    in-memory dataset in messages (default: its type)."""
    check_on_error(on_error)
    sr = open_split(spec, split, on_error=on_error, label=label)
    return collect_records(
        sr.rows,
        columns=columns,
        image_root=Path(image_root) if image_root is not None else sr.image_root,
        id_prefix=sr.id_prefix,
        on_error=on_error,
        label=sr.label,
        skipped=sr.skipped,
        limit=limit,
    )


def _feature_name(feature: Any) -> str:
    name = type(feature).__name__
    if name == "Value":
        return str(feature.dtype)
    inner = getattr(feature, "feature", None)
    return (
        f"{name}({_feature_name(inner)})"
        if inner is not None and name in ("List", "Sequence", "LargeList")
        else name
    )


def _is_row(obj: dict) -> bool:
    return not all(isinstance(v, list | tuple) or _is_hf_dataset(v) for v in obj.values())


def _is_hf_dataset(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets.") and hasattr(obj, "features")


def _pick_split(obj: Any, split: str | None, label: str) -> tuple[Any, str | None]:
    if not isinstance(obj, dict):  # a single Dataset: it is the split
        return obj, None
    names = list(obj)
    for name in SPLIT_ALIASES.get(split, (split,)) if split else ():
        if name in obj:
            return obj[name], name
    if split is None and len(names) == 1:
        return obj[names[0]], names[0]
    raise DataError(f"{label}: no split {split!r}; it holds {names}")


def _iter_dataset(ds: Any, label: str) -> Iterator[tuple[tuple[str, str], Any]]:
    """Rows of a ``datasets.Dataset`` as stored (Arrow): images stay ``{"bytes", "path"}`` dicts, so a
    corrupt image is one bad row rather than an exception inside ``datasets``' decoder; ClassLabel columns
    become their names."""
    if type(ds).__name__ == "IterableDataset":
        for i, row in enumerate(ds, start=1):
            yield (label, f"row {i}"), row
        return
    names = {k: f.int2str for k, f in ds.features.items() if type(f).__name__ == "ClassLabel"}
    i = 0
    for table in ds.with_format("arrow").iter(batch_size=256):
        for row in table.to_pylist():
            i += 1
            for k, int2str in names.items():
                if isinstance(row.get(k), int) and row[k] >= 0:
                    row[k] = int2str(row[k])
            yield (label, f"row {i}"), row


def require_datasets(why: str) -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise DataError(f"{why} needs the `datasets` package: pip install datasets") from exc
    return datasets


# ---- the hub ------------------------------------------------------------------------------------------------
def offline_reason() -> str | None:
    """Why the hub cannot be used now (an offline variable, or no connection to it), or None."""
    ds_flag = os.environ.get("HF_DATASETS_OFFLINE")
    if ds_flag is not None:  # as datasets does: this one, when set, decides
        if ds_flag.upper() in _TRUE:
            return f"HF_DATASETS_OFFLINE={ds_flag}"
    else:
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            if os.environ.get(var, "").upper() in _TRUE:
                return f"{var}={os.environ[var]}"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=float(os.environ.get("MSSR_HUB_TIMEOUT", "5"))):
            return None
    except OSError as exc:
        return f"no connection to {host}:{port}: {exc.strerror or exc}"


@contextlib.contextmanager
def _offline(datasets: Any) -> Iterator[None]:
    """datasets and huggingface_hub in offline mode (cache only) for the duration, whatever the environment
    said at import time."""
    import huggingface_hub.constants as hub_constants

    saved = (
        datasets.config.HF_HUB_OFFLINE,
        datasets.config.HF_DATASETS_OFFLINE,
        hub_constants.HF_HUB_OFFLINE,
    )
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, hub_constants.HF_HUB_OFFLINE = (
            saved
        )


def load_hub(name: str, split: str) -> Any:
    """``datasets.load_dataset(name, split=split)``; offline (a variable, or the hub unreachable) it reads the
    local cache only, and a dataset not there fails with one line saying so."""
    datasets = require_datasets(f"loading the Hugging Face dataset {name!r}")
    reason = offline_reason()
    try:
        if reason is None:
            return datasets.load_dataset(name, split=split)
        with _offline(datasets):
            return datasets.load_dataset(name, split=split)
    except Exception as exc:  # datasets raises many types; all become one line
        if reason is not None:
            raise DataError(
                f"{name}@{split}: the Hugging Face hub is not available ({reason}) and this dataset is not in the local "
                f"datasets cache; load it once where the hub is reachable, or copy a save_to_disk directory "
                f"here and pass its path ({_first_line(exc)})"
            ) from exc
        raise DataError(
            f"{name}@{split}: loading from the Hugging Face hub failed: {_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


__all__ = [
    "Source",
    "SplitRows",
    "has_split",
    "load_hub",
    "load_source",
    "offline_reason",
    "open_split",
    "resolve_source",
    "resolve_split_file",
    "split_names",
    "without_split",
]

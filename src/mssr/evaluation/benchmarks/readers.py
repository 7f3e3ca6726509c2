"""Read benchmark files as published: JSON (a list, or an object keyed by id), JSONL, Hugging Face parquet
shards and ``save_to_disk`` arrow files, and VLMEvalKit-style TSV; decode the images they reference or embed.

Every row comes with a location (``line 12``, ``row 5``, ``key 'v1_0'``) so errors name the file and the row.
Images are read lazily (:class:`ImageRef`): a benchmark of thousands of images is never decoded at once.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

TABLE_SUFFIXES = (".json", ".jsonl", ".parquet", ".arrow", ".tsv", ".csv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


class BenchmarkDataError(ValueError):
    """A benchmark file that cannot be read as its benchmark's layout, or an image that is missing or broken;
    the message names the file, the row or item, and the key or image path."""


@dataclass(frozen=True)
class Row:
    """One raw row of a benchmark file: its data, where it is (for messages), and its key when the file is
    an object keyed by id (MathVista's ``testmini.json``, LogicVista's ``dataset.json``)."""

    data: dict[str, Any]
    where: str
    key: str | None = None


# ------------------------------------------------------------------------------------------------- tables
def read_rows(path: str | Path) -> list[Row]:
    """All rows of one benchmark file (or of every shard when ``path`` is a directory of parquet/arrow files)."""
    p = Path(path)
    if p.is_dir():
        shards = sorted(f for f in p.iterdir() if f.suffix in (".parquet", ".arrow"))
        if not shards:
            raise BenchmarkDataError(f"{p}: no parquet or arrow shards in this directory")
        rows: list[Row] = []
        for shard in shards:
            rows.extend(read_rows(shard))
        return rows
    if not p.is_file():
        raise BenchmarkDataError(f"{p}: no such benchmark file")
    suffix = p.suffix.lower()
    if suffix == ".json":
        return _read_json(p)
    if suffix == ".jsonl":
        return _read_jsonl(p)
    if suffix == ".parquet":
        return _read_parquet(p)
    if suffix == ".arrow":
        return _read_arrow(p)
    if suffix in (".tsv", ".csv"):
        return _read_delimited(p, "\t" if suffix == ".tsv" else ",")
    raise BenchmarkDataError(f"{p}: unsupported file type {p.suffix!r}; expected one of {TABLE_SUFFIXES}")


def _object(p: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BenchmarkDataError(f"{p}: {where}: expected a JSON object, got {type(value).__name__}")
    return value


def _read_json(p: Path) -> list[Row]:
    try:
        data = json.loads(p.read_bytes().decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        raise BenchmarkDataError(
            f"{p}: malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if isinstance(data, list):
        return [Row(_object(p, f"row {i}", r), f"row {i}") for i, r in enumerate(data, start=1)]
    if isinstance(data, dict):
        return [Row(_object(p, f"key {k!r}", r), f"key {k!r}", str(k)) for k, r in data.items()]
    raise BenchmarkDataError(
        f"{p}: expected a JSON list of rows or an object keyed by id, got {type(data).__name__}"
    )


def _read_jsonl(p: Path) -> list[Row]:
    rows = []
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkDataError(
                    f"{p}: line {lineno}: malformed JSON ({exc.msg} at column {exc.colno})"
                ) from None
            rows.append(Row(_object(p, f"line {lineno}", value), f"line {lineno}"))
    return rows


def _pyarrow(p: Path):
    try:
        import pyarrow as pa
        import pyarrow.ipc
        import pyarrow.parquet
    except ImportError:
        raise BenchmarkDataError(
            f"{p}: reading parquet/arrow files needs pyarrow, which is not installed (pip install pyarrow); "
            "JSON/JSONL/TSV layouts work without it"
        ) from None
    return pa


def _read_parquet(p: Path) -> list[Row]:
    pa = _pyarrow(p)
    try:
        table = pa.parquet.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BenchmarkDataError(f"{p}: not a readable parquet file ({exc})") from None
    return [Row(r, f"row {i}") for i, r in enumerate(table.to_pylist(), start=1)]


def _read_arrow(p: Path) -> list[Row]:
    """A ``datasets`` ``save_to_disk`` shard (arrow IPC stream), or an arrow IPC file."""
    pa = _pyarrow(p)
    table = None
    for opener in (pa.ipc.open_stream, pa.ipc.open_file):
        try:
            with pa.memory_map(str(p), "r") as source:
                table = opener(source).read_all()
            break
        except (pa.ArrowInvalid, OSError):
            continue
    if table is None:
        raise BenchmarkDataError(f"{p}: not an arrow IPC stream or file")
    return [Row(r, f"row {i}") for i, r in enumerate(table.to_pylist(), start=1)]


def _read_delimited(p: Path, delimiter: str) -> list[Row]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # base64 images are long fields
    with p.open("r", encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise BenchmarkDataError(f"{p}: empty file (no header row)") from None
        rows = []
        for i, values in enumerate(reader, start=1):
            if not values:
                continue
            if len(values) != len(header):
                raise BenchmarkDataError(
                    f"{p}: row {i} (line {reader.line_num}) has {len(values)} fields, the header has {len(header)}"
                )
            rows.append(Row(dict(zip(header, values, strict=True)), f"row {i}"))
    return rows


# ------------------------------------------------------------------------------------------------- values
def is_missing(value: Any) -> bool:
    """None, NaN (pandas/TSV empties) or a blank string."""
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def text_of(value: Any) -> str:
    """A field as text: numbers printed without a spurious ``.0`` (``3.0`` from a TSV float column → ``3``)."""
    if is_missing(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value).strip()


def require(row: Row, file: Path, keys: Sequence[str]) -> None:
    """Raise naming the file, the row and the key when one of ``keys`` is absent."""
    for key in keys:
        if key not in row.data:
            raise BenchmarkDataError(
                f"{file}: {row.where}: missing key {key!r} (row has {sorted(row.data)[:12]})"
            )


# ------------------------------------------------------------------------------------------------- images
@dataclass(frozen=True)
class ImageRef:
    """An image a benchmark item needs: a file (``path``), encoded bytes (``data``) or an in-memory image.

    ``label`` names it in messages (the file path, or ``<embedded bytes>`` with the item).
    """

    path: Path | None = None
    data: bytes | None = None
    image: Image.Image | None = None
    label: str = ""

    def exists(self) -> bool:
        return self.path is None or self.path.is_file()

    def load(self) -> Image.Image:
        """The decoded RGB image; :class:`BenchmarkDataError` naming the image when it is missing or broken."""
        if self.image is not None:
            return self.image.convert("RGB") if self.image.mode != "RGB" else self.image
        try:
            if self.path is not None:
                if not self.path.is_file():
                    raise BenchmarkDataError(f"{self.label}: image file not found: {self.path}")
                with Image.open(self.path) as im:
                    im.load()
                    return im.convert("RGB")
            assert self.data is not None
            with Image.open(io.BytesIO(self.data)) as im:
                im.load()
                return im.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            if isinstance(exc, BenchmarkDataError):
                raise
            what = self.path if self.path is not None else "embedded image bytes"
            raise BenchmarkDataError(f"{self.label}: cannot decode image {what}: {exc}") from None


_DATA_URI = re.compile(r"^data:image/[\w.+-]+;base64,", re.I)


def first_image(
    d: dict[str, Any], keys: tuple[str, ...], root: Path, label: str, *, base64_keys: tuple[str, ...] = ()
) -> ImageRef:
    """The image of the first of `keys` that `d` fills (an embedded image before a path, say), or a
    `BenchmarkDataError` naming them all; `base64_keys` are read with ``base64_strings`` (VLMEvalKit TSV)."""
    for key in keys:
        value = d.get(key)
        if not is_missing(value):
            ref = image_ref(value, root, label, base64_strings=key in base64_keys)
            if ref is not None:
                return ref
            break
    raise BenchmarkDataError(f"{label}: no image ({' or '.join(repr(k) for k in keys)})")


def image_ref(value: Any, root: Path, label: str, *, base64_strings: bool = False) -> ImageRef | None:
    """An :class:`ImageRef` for one image field, or ``None`` when the field is empty.

    Accepted: a path (relative to ``root``), ``{"bytes": …, "path": …}`` (the Hugging Face ``Image`` feature;
    bytes raw or base64), raw bytes, a ``data:image/…;base64,`` URI, a PIL image, and — with
    ``base64_strings`` (VLMEvalKit TSV) — a bare base64 string.
    """
    if is_missing(value):
        return None
    if isinstance(value, Image.Image):
        return ImageRef(image=value, label=label)
    if isinstance(value, dict):
        data = value.get("bytes")
        if not is_missing(data):
            return ImageRef(data=_bytes(data, label), label=label)
        path = value.get("path")
        if is_missing(path):
            return None
        return ImageRef(path=_resolve(str(path), root), label=label)
    if isinstance(value, bytes | bytearray):
        return ImageRef(data=bytes(value), label=label)
    if isinstance(value, str):
        s = value.strip()
        if _DATA_URI.match(s):
            return ImageRef(data=_b64(s.split(",", 1)[1], label), label=label)
        if base64_strings or (len(s) > 512 and not s.lower().endswith(IMAGE_SUFFIXES)):
            return ImageRef(data=_b64(s, label), label=label)
        return ImageRef(path=_resolve(s, root), label=label)
    raise BenchmarkDataError(f"{label}: unsupported image value of type {type(value).__name__}")


def _bytes(data: Any, label: str) -> bytes:
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if isinstance(data, str):
        return _b64(data, label)
    raise BenchmarkDataError(f"{label}: image bytes of unsupported type {type(data).__name__}")


def _b64(s: str, label: str) -> bytes:
    try:
        return base64.b64decode(s, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise BenchmarkDataError(f"{label}: image field is neither a path nor valid base64 ({exc})") from None


def _resolve(path: str, root: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (root / p)

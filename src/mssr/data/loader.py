"""Read datasets from disk into :class:`~mssr.data.record.Record` lists.

Layout (the one the built-in task writes, and the one documented in ``docs/data.md``)::

    DIR/{split}.jsonl          one JSON object per line (also accepted: {split}.parquet, {split}.json)
    DIR/images/...png          image files referenced by relative path

Row keys (verl / EasyR1 convention): the prompt text under ``problem`` (also ``question``, ``prompt`` -- a
string or a list of chat messages -- or ``query``) with one ``<image>`` placeholder per image; the images
under ``images`` (a list) or ``image`` (one), each a path relative to the data file, an absolute path, a
``{"bytes": ..., "path": ...}`` dict (bytes raw or base64), raw bytes, or a ``data:image/...;base64,`` URI;
the answer under ``answer`` (or ``ground_truth``); optional ``answer_type``, ``choices``, ``id``. Every other
key is kept in ``Record.extra``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .record import ANSWER_TYPES, CHOICE_LETTERS, IMAGE_PLACEHOLDER, DataError, Record, RecordList

log = logging.getLogger(__name__)
DATA_SUFFIXES = (".jsonl", ".parquet", ".json")
SPLIT_ALIASES = {"val": ("val", "validation", "valid"), "validation": ("validation", "val", "valid")}


@dataclass(frozen=True)
class Columns:
    """Which row keys hold what; each entry is tried in order and the first key present wins.

    The defaults recognise EasyR1's (``problem`` / ``answer`` / ``images``) and TRL's (``prompt`` /
    ``solution`` / ``image``) column names; :meth:`with_keys` names one key per role instead.
    """

    question: Sequence[str] = ("problem", "question", "prompt", "query")
    images: Sequence[str] = ("images", "image")
    answer: Sequence[str] = ("answer", "ground_truth", "solution")
    choices: Sequence[str] = ("choices", "options")
    answer_type: Sequence[str] = ("answer_type",)
    id: Sequence[str] = ("id", "pid", "question_id")

    ROLES = ("question", "answer", "images", "choices", "answer_type", "id")

    @classmethod
    def with_keys(
        cls,
        *,
        prompt_key: str | None = None,
        answer_key: str | None = None,
        image_key: str | None = None,
        choices_key: str | None = None,
    ) -> Columns:
        """Defaults, except that each key given (``data.prompt_key`` etc.) is the only one tried for its role."""
        kw = {
            role: (key,)
            for role, key in (
                ("question", prompt_key),
                ("answer", answer_key),
                ("images", image_key),
                ("choices", choices_key),
            )
            if key
        }
        return cls(**kw)

    def detect(self, column_names: Sequence[str]) -> dict[str, str | None]:
        """role -> the column that fills it (the first of the role's keys present), or None."""
        names = set(column_names)
        return {role: next((k for k in getattr(self, role) if k in names), None) for role in self.ROLES}


def load_records(
    path_or_dir: str | Path,
    split: str | None = None,
    *,
    on_error: str = "raise",
    columns: Columns | None = None,
    image_root: str | Path | None = None,
) -> RecordList:
    """Read one split of a dataset (a directory holding ``{split}.jsonl`` etc., or one data file).

    ``on_error="raise"`` stops at the first bad row with a :class:`DataError` naming file and line;
    ``on_error="skip"`` drops bad rows, logs how many, and lists them in the result's ``.skipped``.
    ``image_root`` resolves relative image paths (default: the data file's directory).
    """
    check_on_error(on_error)
    path = resolve_split_file(path_or_dir, split)
    root = Path(image_root) if image_root is not None else path.parent
    skipped: list[str] = []
    return collect_records(
        iter_file_rows(path, on_error, skipped),
        columns=columns,
        image_root=root,
        id_prefix=path.stem,
        on_error=on_error,
        label=str(path),
        skipped=skipped,
    )


def check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


def collect_records(
    rows: Iterable[tuple[tuple[str, str], Any]],
    *,
    columns: Columns | None,
    image_root: Path,
    id_prefix: str,
    on_error: str,
    label: str,
    skipped: list[str] | None = None,
    limit: int | None = None,
    quiet: bool = False,
) -> RecordList:
    """Parse ``(where, row)`` pairs into a :class:`RecordList` (bad rows raise or are counted in ``.skipped``;
    ``limit`` stops after that many good records; ``quiet``: no warning about skipped rows)."""
    cols = columns or Columns()
    records: list[Record] = []
    skipped = skipped if skipped is not None else []
    seen_ids: set[str] = set()
    for where, row in rows:
        if limit is not None and len(records) >= limit:
            break
        try:
            if isinstance(row, Record):
                rec = row
            else:
                rec = parse_row(
                    row,
                    where=where,
                    cols=cols,
                    image_root=image_root,
                    default_id=f"{id_prefix}-{where[1].split()[-1]}",
                )
            if rec.id in seen_ids:
                raise DataError(f"{where[0]}: {where[1]}: duplicate id {rec.id!r}")
            seen_ids.add(rec.id)
        except DataError as exc:
            if on_error == "raise":
                raise
            skipped.append(str(exc))
            continue
        records.append(rec)
    if skipped and not quiet:
        log.warning(
            "%s: skipped %d bad row(s) of %d; first: %s (`mssr data inspect` lists them all)",
            label,
            len(skipped),
            len(skipped) + len(records),
            skipped[0],
        )
    return RecordList(records, skipped)


def read_jsonl(
    path: str | Path,
    *,
    question_key: str = "question",
    images_key: str = "images",
    answer_key: str = "answer",
    choices_key: str = "choices",
    answer_type_key: str = "answer_type",
    id_key: str = "id",
    image_root: str | Path | None = None,
    on_error: str = "raise",
) -> RecordList:
    """Generic adapter for user JSONL: name the keys your file uses; images may be one path or a list."""
    cols = Columns(
        question=(question_key,),
        images=(images_key,),
        answer=(answer_key,),
        choices=(choices_key,),
        answer_type=(answer_type_key,),
        id=(id_key,),
    )
    return load_records(path, on_error=on_error, columns=cols, image_root=image_root)


def resolve_split_file(path_or_dir: str | Path, split: str | None) -> Path:
    """The data file for ``split`` inside a directory, or ``path_or_dir`` itself when it is a file."""
    p = Path(path_or_dir)
    if p.is_file():
        if split is not None and p.stem not in SPLIT_ALIASES.get(split, (split,)):
            raise DataError(f"{p}: asked for split {split!r} but the file is {p.name!r}")
        return p
    if not p.is_dir():
        raise DataError(f"{p}: no such dataset file or directory")
    available = sorted(
        f for f in p.iterdir() if f.is_file() and f.suffix in DATA_SUFFIXES and f.name != "manifest.json"
    )
    if split is None:
        if len(available) == 1:
            return available[0]
        raise DataError(f"{p}: name a split; found {[f.name for f in available]}")
    for name in SPLIT_ALIASES.get(split, (split,)):
        for suffix in DATA_SUFFIXES:
            cand = p / f"{name}{suffix}"
            if cand.is_file():
                return cand
    raise DataError(f"{p}: no file for split {split!r}; found {[f.name for f in available]}")


# ---- rows ---------------------------------------------------------------------------------------------------
def iter_file_rows(path: Path, on_error: str, skipped: list[str]) -> Iterator[tuple[tuple[str, str], Any]]:
    """(file, "line N" / "row N") and the raw row, for each row of the file."""
    if path.suffix == ".jsonl":
        with path.open("r", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = (str(path), f"line {lineno}")
                try:
                    yield where, json.loads(line)
                except json.JSONDecodeError as exc:
                    err = DataError(
                        f"{path}: line {lineno}: malformed JSON ({exc.msg} at column {exc.colno})"
                    )
                    if on_error == "raise":
                        raise err from exc
                    skipped.append(str(err))
    elif path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from exc
        if isinstance(data, dict):  # {id: row} as in MathVista's testmini.json
            for k, row in data.items():
                if isinstance(row, dict):
                    row = {"id": str(k), **row}
                yield (str(path), f"key {k!r}"), row
        elif isinstance(data, list):
            for i, row in enumerate(data, start=1):
                yield (str(path), f"row {i}"), row
        else:
            raise DataError(f"{path}: expected a JSON list or object of rows, got {type(data).__name__}")
    elif path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover - pyarrow ships with `datasets`
            raise DataError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from exc
        import pyarrow as pa

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(
                f"{path}: not a readable parquet file ({' '.join(str(exc).split())[:300]}); a damaged file "
                "cannot be read row by row, so data.on_error=skip does not apply to it"
            ) from None
        for i, row in enumerate(table.to_pylist(), start=1):
            yield (str(path), f"row {i}"), row
    else:
        raise DataError(f"{path}: unsupported data file type {path.suffix!r}; use one of {DATA_SUFFIXES}")


def _first(row: dict, keys: Sequence[str]) -> tuple[str | None, Any]:
    for k in keys:
        if k in row:
            return k, row[k]
    return None, None


def parse_row(
    row: Any, *, where: tuple[str, str], cols: Columns, image_root: Path, default_id: str
) -> Record:
    """Validate and convert one raw row; raises :class:`DataError` naming ``where``."""
    file, pos = where

    def fail(msg: str) -> DataError:
        return DataError(f"{file}: {pos}: {msg}")

    if not isinstance(row, dict):
        raise fail(f"expected a JSON object, got {type(row).__name__}")
    used: set[str] = set()

    qkey, text = _first(row, cols.question)
    if qkey is None:
        raise fail(f"no question text (looked for keys {list(cols.question)})")
    used.add(qkey)
    text = _prompt_text(text, fail)

    akey, answer = _first(row, cols.answer)
    if akey is None or answer is None or (isinstance(answer, str) and not answer.strip()):
        raise fail(f"row has no answer (looked for keys {list(cols.answer)})")
    used.add(akey)
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    if isinstance(answer, bool) or not isinstance(answer, str | int | float):
        raise fail(f"answer must be a string or a number, got {type(answer).__name__}")
    answer = str(answer).strip()
    answer_raw = None
    short = final_answer(answer)
    if short is not None and short != answer:  # a worked solution (TRL's `solution`): keep its final answer
        answer_raw, answer = answer, short
    if not answer:
        raise fail(f"row has an empty final answer in {akey!r}")

    ikey, raw_images = _first(row, cols.images)
    if ikey is not None:
        used.add(ikey)
    if raw_images is None:
        raw_images = []
    elif not isinstance(raw_images, list):
        raw_images = [raw_images]
    images = [_load_image(img, image_root, fail, k) for k, img in enumerate(raw_images)]

    n_placeholders = text.count(IMAGE_PLACEHOLDER)
    if n_placeholders not in (0, len(images)):
        raise fail(
            f"{n_placeholders} {IMAGE_PLACEHOLDER} placeholder(s) in the question but {len(images)} image(s)"
        )
    question = " ".join(part.strip() for part in text.split(IMAGE_PLACEHOLDER) if part.strip())

    ckey, choices = _first(row, cols.choices)
    if ckey is not None:
        used.add(ckey)
    if isinstance(choices, dict):
        choices = list(choices.values())
    if choices is not None:
        if not isinstance(choices, list) or not choices:
            raise fail(f"choices must be a non-empty list or null, got {choices!r}")
        if len(choices) > len(CHOICE_LETTERS):
            raise fail(f"at most {len(CHOICE_LETTERS)} choices are supported, got {len(choices)}")
        choices = [str(c) for c in choices]

    tkey, answer_type = _first(row, cols.answer_type)
    if tkey is not None:
        used.add(tkey)
    extra_answer_text = None
    if choices is not None and (answer_type in (None, "choice", "multi_choice")):
        letters = CHOICE_LETTERS[: len(choices)]
        if answer.upper() in letters and len(answer) == 1:
            answer = answer.upper()
        elif answer in choices:  # answer given as the option text (MathVista style): store the letter
            extra_answer_text = answer
            answer = letters[choices.index(answer)]
        else:
            raise fail(
                f"answer {answer!r} is neither a letter {letters[0]}-{letters[-1]} nor one of the choices"
            )
        answer_type = "choice"
    if answer_type is None:
        answer_type = _infer_type(answer)
    if answer_type not in ANSWER_TYPES:
        raise fail(f"answer_type {answer_type!r} is not one of {ANSWER_TYPES}")
    if answer_type == "choice" and choices is None:
        raise fail("answer_type is 'choice' but the row has no choices")

    id_key, rid = _first(row, cols.id)
    if id_key is not None:
        used.add(id_key)
    rid = default_id if rid is None else str(rid)

    extra = {k: v for k, v in row.items() if k not in used}
    if extra_answer_text is not None:
        extra["answer_text"] = extra_answer_text
    if answer_raw is not None:
        extra["answer_raw"] = answer_raw
    return Record(
        id=rid,
        question=question,
        images=images,
        answer=answer,
        answer_type=answer_type,
        choices=choices if answer_type == "choice" else None,
        extra=extra,
    )


def _prompt_text(value: Any, fail) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # chat messages: take the user turn(s)
        parts = []
        for msg in value:
            if not isinstance(msg, dict) or "content" not in msg:
                raise fail("prompt messages must be objects with 'role' and 'content'")
            if msg.get("role", "user") != "user":
                continue
            content = msg["content"]
            if isinstance(content, list):  # [{"type": "image"}, {"type": "text", "text": ...}]
                content = "".join(
                    IMAGE_PLACEHOLDER if c.get("type") == "image" else c.get("text", "")
                    for c in content
                    if isinstance(c, dict)
                )
            parts.append(str(content))
        if parts:
            return "\n".join(parts)
    raise fail(f"question must be a string or a list of chat messages, got {type(value).__name__}")


_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)


def final_answer(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (braces balanced), else of the last ``<answer>...</answer>``,
    else None: how a worked solution column (TRL's ``solution``) states its answer."""
    start = text.rfind("\\boxed{")
    if start >= 0:
        i, depth = start + len("\\boxed{"), 1
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[i:j].strip()
    tags = _ANSWER_TAG.findall(text)
    if tags:
        return tags[-1].strip()
    return None


def _infer_type(answer: str) -> str:
    try:
        int(answer)
        return "integer"
    except ValueError:
        pass
    try:
        float(answer)
        return "float"
    except ValueError:
        return "text"


def _load_image(value: Any, root: Path, fail, k: int) -> Image.Image:
    label = f"image {k}"
    data: bytes | None = None
    path: Path | None = None
    if isinstance(value, Image.Image):  # a decoded datasets Image feature, or a PIL image passed in memory
        try:
            return _bounded_rgb(value)
        except (OSError, SyntaxError, ValueError) as exc:
            raise fail(f"{label}: corrupt or unreadable image ({exc})") from exc
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 0) in (2, 3):
        try:
            return _bounded_rgb(Image.fromarray(value))
        except (TypeError, ValueError) as exc:
            raise fail(f"{label}: array is not an image ({exc})") from exc
    if isinstance(value, dict):  # HF datasets Image feature / EasyR1 parquet: {"bytes": ..., "path": ...}
        if value.get("bytes") is not None:
            raw = value["bytes"]
            data = _b64(raw, fail, label) if isinstance(raw, str) else raw
            if not isinstance(data, bytes | bytearray):
                raise fail(f"{label}: 'bytes' must be bytes or base64 text, got {type(raw).__name__}")
            data = bytes(data)
        elif value.get("path") is not None:
            value = value["path"]
        else:
            raise fail(f"{label}: dict without 'bytes' or 'path'")
    if data is None:
        if isinstance(value, bytes | bytearray):
            data = bytes(value)
        elif isinstance(value, str) and value.startswith("data:image"):
            data = _b64(value.split(",", 1)[-1], fail, label)
        elif isinstance(value, str):
            path = Path(value) if Path(value).is_absolute() else root / value
            label = f"{label} {path}"
            if not path.is_file():
                raise fail(f"{label}: missing image file")
        else:
            raise fail(
                f"{label}: expected a path, bytes, a {{'bytes', 'path'}} dict, a PIL image or a data URI, "
                f"got {type(value).__name__}"
            )
    try:
        with warnings.catch_warnings():  # a decompression bomb is a bad row, not a warning
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data) if data is not None else path) as im:
                return _bounded_rgb(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise fail(f"{label}: refused as a decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        why = (
            re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", f"<{len(data)} bytes>", str(exc)) if data else exc
        )
        raise fail(f"{label}: corrupt or unreadable image ({why})") from exc


# images are held downscaled to at most this many pixels (aspect kept): Qwen2-VL's processor default max_pixels
# (16384 × 28 × 28); the processor resizes into [min_pixels, max_pixels] anyway, and a 4000² photo would
# otherwise be held at full resolution (16 of them took 2.5 GB)
MAX_IMAGE_PIXELS = 16384 * 28 * 28


def _bounded_rgb(im: Image.Image, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """``im`` decoded as RGB with at most ``max_pixels`` pixels (JPEGs decoded at a reduced scale directly)."""
    w, h = im.size
    if w * h > max_pixels:
        scale = (max_pixels / (w * h)) ** 0.5
        target = (max(1, int(w * scale)), max(1, int(h * scale)))
        im.draft("RGB", target)  # JPEG: decode at 1/2, 1/4 or 1/8 scale; other formats ignore it
        im.load()
        out = im.convert("RGB")
        out.thumbnail(target, Image.Resampling.BICUBIC)
        return out
    im.load()
    return im.convert("RGB")


def _b64(value: str, fail, label: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise fail(f"{label}: invalid base64 image data") from exc

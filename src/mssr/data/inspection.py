"""What a dataset holds, as ``mssr data`` reads it: columns and their roles, counts, a sample, image sizes,
and every row that would be rejected and why (``mssr data inspect``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from .loader import Columns, collect_records
from .record import DataError, Record
from .sources import open_split, resolve_source, split_names

ROLE_NAMES = {
    "question": "prompt",
    "answer": "answer",
    "images": "images",
    "choices": "choices",
    "answer_type": "answer_type",
    "id": "id",
}


def inspect_dataset(
    spec: Any, split: str | None = None, *, columns: Columns | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """One report per split (the one named, else every split a local source holds): see
    :func:`inspect_split`."""
    src = resolve_source(spec)
    if split or src.split or src.kind in ("hub", "file"):
        return [inspect_split(spec, split, columns=columns, limit=limit)]
    names = split_names(spec)
    if not names:
        return [inspect_split(spec, None, columns=columns, limit=limit)]
    return [inspect_split(spec, name, columns=columns, limit=limit) for name in names]


def inspect_split(
    spec: Any, split: str | None = None, *, columns: Columns | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Read one split with ``on_error="skip"`` and report: ``label``, ``split``, ``rows`` (read),
    ``columns`` (name -> type), ``mapping`` (role -> column or None), ``extra_columns``, ``valid``,
    ``rejected`` (messages), ``answer_types``, ``with_choices``, ``images_per_row``, ``image_sizes``
    (``WxH`` -> count), ``sample`` (the first valid row)."""
    cols = columns or Columns()
    sr = open_split(spec, split, on_error="skip")
    seen: dict[str, str] = dict(sr.features or {})
    n_rows = 0

    def watch(rows: Iterator[tuple[tuple[str, str], Any]]) -> Iterator[tuple[tuple[str, str], Any]]:
        nonlocal n_rows
        for where, row in rows:
            if limit is not None and n_rows >= limit:
                return
            n_rows += 1
            if isinstance(row, dict):
                for k, v in row.items():
                    if k not in seen or (seen[k] == "null" and v is not None):
                        seen[k] = _type_name(v)
            yield where, row

    recs = collect_records(
        watch(sr.rows),
        columns=cols,
        image_root=sr.image_root,
        id_prefix=sr.id_prefix,
        on_error="skip",
        label=sr.label,
        skipped=sr.skipped,
        quiet=True,
    )
    n_rows += sum(1 for m in sr.skipped if "malformed JSON" in m)
    mapping = cols.detect(list(seen))
    sizes = Counter(f"{im.width}x{im.height}" for r in recs for im in r.images)
    return {
        "label": sr.label,
        "split": sr.split,
        "rows": n_rows,
        "columns": seen,
        "mapping": mapping,
        "extra_columns": [k for k in seen if k not in set(mapping.values())],
        "valid": len(recs),
        "rejected": list(recs.skipped),
        "answer_types": dict(Counter(r.answer_type for r in recs).most_common()),
        "with_choices": sum(r.choices is not None for r in recs),
        "images_per_row": dict(sorted(Counter(len(r.images) for r in recs).items())),
        "image_sizes": dict(sizes.most_common()),
        "sample": _sample(recs[0]) if recs else None,
    }


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, dict) and {"bytes", "path"} <= set(v):
        return "image{bytes,path}"
    if isinstance(v, list):
        inner = {_type_name(x) for x in v[:8]} - {"null"}
        return f"list[{inner.pop() if len(inner) == 1 else '...' if inner else ''}]"
    if type(v).__module__.startswith("PIL"):
        return "PIL.Image"
    return type(v).__name__


def _short(v: Any, n: int = 160) -> Any:
    text = v if isinstance(v, str) else repr(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def _sample(r: Record) -> dict[str, Any]:
    return {
        "id": r.id,
        "question": _short(r.question, 300),
        "answer": _short(r.answer),
        "answer_type": r.answer_type,
        "choices": r.choices,
        "images": [f"{im.width}x{im.height}" for im in r.images],
        "extra": {k: _short(v, 80) for k, v in r.extra.items()},
    }


def format_report(rep: dict[str, Any], *, show: int = 20) -> str:
    """The report as the lines ``mssr data inspect`` prints."""
    out = [f"== {rep['label']}" + (f"  (split {rep['split']})" if rep["split"] else "")]
    out.append(f"rows: {rep['rows']}   valid: {rep['valid']}   rejected: {len(rep['rejected'])}")
    out.append("columns: " + ", ".join(f"{k} ({t})" for k, t in rep["columns"].items()))
    out.append("mapping:")
    for role, col in rep["mapping"].items():
        out.append(f"  {ROLE_NAMES[role]:<12}<- {col if col else '(none)'}")
    if rep["extra_columns"]:
        out.append("  other columns are kept in Record.extra: " + ", ".join(rep["extra_columns"]))
    if rep["answer_types"]:
        out.append(
            "answer types: "
            + "  ".join(f"{k}={v}" for k, v in rep["answer_types"].items())
            + f"   with choices: {rep['with_choices']}"
        )
    if rep["images_per_row"]:
        out.append("images per row: " + "  ".join(f"{k}: {v}" for k, v in rep["images_per_row"].items()))
    if rep["image_sizes"]:
        sizes = list(rep["image_sizes"].items())
        ws = [int(s.split("x")[0]) for s, _ in sizes]
        hs = [int(s.split("x")[1]) for s, _ in sizes]
        more = f"  (+{len(sizes) - 8} more sizes)" if len(sizes) > 8 else ""
        out.append(
            f"image sizes (WxH): width {min(ws)}-{max(ws)}, height {min(hs)}-{max(hs)}; "
            + "  ".join(f"{s}: {n}" for s, n in sizes[:8])
            + more
        )
    if rep["sample"]:
        out.append("sample row:")
        for k, v in rep["sample"].items():
            out.append(f"  {k}: {v}")
    if rep["rejected"]:
        out.append(f"rejected rows ({len(rep['rejected'])}):")
        out.extend(f"  {m}" for m in rep["rejected"][:show])
        if len(rep["rejected"]) > show:
            out.append(f"  ... {len(rep['rejected']) - show} more (--show N lists more)")
    return "\n".join(out)


__all__ = ["DataError", "format_report", "inspect_dataset", "inspect_split"]

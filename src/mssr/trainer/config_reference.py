"""The config reference (docs/config.md), generated from :class:`~mssr.trainer.config.TrainConfig`'s own fields:
each field's key, type and default, and its documentation — the comment on its line and the comment lines
right above it in src/mssr/trainer/config.py. A test regenerates it and fails when the file and the fields drift.

    python -m mssr.trainer.config_reference > docs/config.md
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import textwrap
import tokenize
import typing
from typing import Any

from mssr.trainer.config import TrainConfig

HEADER = """# Config reference

Every setting of `mssr train` (`TrainConfig`), section by section: the YAML key (also a command-line override,
`key=value`), its type, its default, and what it means. Generated from the fields' own documentation in
`src/mssr/trainer/config.py` by `python -m mssr.trainer.config_reference > docs/config.md`
(`tests/trainer/test_config_reference.py` fails when this file and the fields drift). Defaults follow
docs/method.md unless scaled down for a 2-core CPU ("CPU:" with the paper's value). A `null` in `algorithm`'s
own settings and in `optim.grad_clip` stands for the named algorithm's value (`mssr.algos.ALGORITHMS`, the one
place these defaults live); it is filled in when the config is loaded, so a run's `config.yaml` records the value
the run used.
"""


def field_docs(cls: type) -> dict[str, str]:
    """``{field: documentation}`` of a dataclass: the comment lines directly above the field, then the comments
    on the field's own lines. Fields written one after another under one comment block share it."""
    source = inspect.getsource(cls)
    lines = source.splitlines()
    comments: dict[int, str] = {}  # line number (1-based) -> comment text
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    body = ast.parse(textwrap.dedent(source)).body[0]
    docs: dict[str, str] = {}
    shared, prev_end = "", -1
    for node in getattr(body, "body", []):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            prev_end = -1
            continue
        above: list[str] = []
        j = node.lineno - 1
        while j >= 1 and lines[j - 1].strip().startswith("#"):
            above.insert(0, comments.get(j, ""))
            j -= 1
        own = [comments[k] for k in range(node.lineno, node.end_lineno + 1) if k in comments]
        if above:
            shared = " ".join(above)
        elif node.lineno != prev_end + 1:
            shared = ""
        head = " ".join(above) or (shared if not own else "")
        docs[node.target.id] = " — ".join(x for x in (head, " ".join(own)) if x)
        prev_end = node.end_lineno
    return docs


def _type_name(tp: Any) -> str:
    text = str(tp) if not isinstance(tp, type) else tp.__name__
    return text.replace("typing.", "").replace("NoneType", "None")


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return f"`{value!r}`" if isinstance(value, str) else f"`{value}`"


def sections() -> list[tuple[str, type, list[tuple[str, str, str, str]]]]:
    """``(section, class, rows)``; a row is ``(key, type, default, documentation)``. The top-level scalars come
    first (section ``""``), then each section, a section's own sections after it (``rollout``, ``rollout.vllm``)."""
    out: list[tuple[str, type, list[tuple[str, str, str, str]]]] = []

    def walk(section: str, cls: type) -> None:
        hints, docs = typing.get_type_hints(cls), field_docs(cls)
        rows, nested = [], []
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            key = f"{section}.{f.name}" if section else f.name
            if dataclasses.is_dataclass(tp):
                nested.append((key, tp))
            else:
                rows.append((key, _type_name(tp), _default(f), docs.get(f.name, "")))
        out.append((section, cls, rows))
        for key, tp in nested:
            walk(key, tp)

    walk("", TrainConfig)
    return out


def reference() -> str:
    """docs/config.md's text."""
    parts = [HEADER]
    all_sections = sections()
    owners = {sec: cls for sec, cls, _ in all_sections}
    for section, cls, rows in all_sections:
        parts.append(f"## {'`' + section + '`' if section else 'Top level'}\n")
        parent, _, name = section.rpartition(".")
        intro = field_docs(owners[parent]).get(name, "") if section else ""
        class_doc = (
            inspect.getdoc(cls) if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "(") else ""
        )
        for text in (intro, class_doc if section else ""):
            if text:
                parts.append(text.replace("\n", " ") + "\n")
        aliases = getattr(cls, "ALIASES", {})
        if aliases:
            old = ", ".join(f"`{section}.{a}` → `{section}.{b}`" for a, b in aliases.items())
            parts.append(f"Old names, still accepted with a deprecation warning: {old}.\n")
        parts.append("| key | type | default | meaning |\n|---|---|---|---|")
        for key, tp, default, doc in rows:
            cell = doc.replace("|", "\\|")
            esc = tp.replace("|", "\\|")
            parts.append(f"| `{key}` | `{esc}` | {default.replace('|', chr(92) + '|')} | {cell} |")
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")

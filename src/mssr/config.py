"""Typed dataclass configs: YAML file → dotted command-line overrides → validated object.

``load_config(TrainConfig, "configs/mssr.yaml", ["optim.lr=1e-4", "algorithm.name=grpo"])``. Unknown keys and
ill-typed values raise :class:`ConfigError` naming the dotted key; a dataclass may define ``validate()``
(called bottom-up) for cross-field checks and ``resolve()`` (called after every check) to fill the values a
null stands for.

Renamed fields: a dataclass may declare ``ALIASES: ClassVar[dict[str, str]] = {"old": "new"}``. An old name is
accepted wherever a key is read (a YAML file, an ``include:``d file, a dotted override, :func:`from_dict`), logs
one deprecation warning naming old → new, and sets the new field; giving both names in one mapping (or one list
of overrides) is a :class:`ConfigError`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")

log = logging.getLogger("mssr.config")


class ConfigError(ValueError):
    """A bad configuration; the message names the dotted key."""


def aliases(cls: Any) -> dict[str, str]:
    """``{old name: new name}`` of dataclass ``cls``'s renamed fields (its ``ALIASES``; empty if none). A new name
    ``section.field`` says that the field moved into the section ``section`` of ``cls``; an old name that is now
    that section's own name (``rho`` -> ``rho.schedule``) is the old field only where its value is not a mapping."""
    return dict(getattr(cls, "ALIASES", None) or {}) if dataclasses.is_dataclass(cls) else {}


def _section_type(cls: Any, name: str) -> Any:
    """The dataclass type of field ``name`` of ``cls`` (also inside ``X | None``), or None if it is no section."""
    if not dataclasses.is_dataclass(cls):
        return None
    tp = get_type_hints(cls).get(name)
    if dataclasses.is_dataclass(tp):
        return tp
    if get_origin(tp) in (Union, types.UnionType):
        found = [a for a in get_args(tp) if dataclasses.is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return None


def _deprecated(old: str, new: str, where: str | None) -> None:
    log.warning(
        "%sdeprecated config key %s → %s (the old name still works)", where + ": " if where else "", old, new
    )


def _rename_aliases(
    cls: Any, data: dict[str, Any], prefix: str = "", *, where: str | None = None, warn: bool = True
) -> dict[str, Any]:
    """One level of ``data`` with ``cls``'s old field names replaced by the new ones (order kept). A new name
    ``section.field`` moves the value into that section (a field that became part of a section)."""
    table = aliases(cls)
    if not table or not any(k in table for k in data):
        return data
    out: dict[str, Any] = {}
    moved: dict[str, dict[str, Any]] = {}
    for k, v in data.items():
        new = table.get(k)
        if new is None or (isinstance(v, dict) and new.partition(".")[0] == k):  # the section itself
            out[k] = v
            continue
        section, _, field = new.partition(".")
        given = data.get(section) if field else None
        if new in data or (field and isinstance(given, dict) and field in given):
            raise ConfigError(
                f"{where + ': ' if where else ''}{prefix}{k} and {prefix}{new} both given; {k} is the old name of "
                f"{new}: keep only {prefix}{new}"
            )
        if warn:
            _deprecated(f"{prefix}{k}", f"{prefix}{new}", where)
        if field:
            if field in moved.get(section, {}):
                first = next(o for o, n in table.items() if n == new and o in data and o != k)
                raise ConfigError(
                    f"{where + ': ' if where else ''}{prefix}{first} and {prefix}{k} both given; both are old "
                    f"names of {prefix}{new}: keep only {prefix}{new}"
                )
            moved.setdefault(section, {})[field] = v
        else:
            out[new] = v
    for section, fields in moved.items():
        current = out.get(section)
        out[section] = {**(current if isinstance(current, dict) else {}), **fields}
    return out


def canonical(cls: Any, data: Any, prefix: str = "", *, where: str | None = None, warn: bool = True) -> Any:
    """A copy of the nested mapping ``data`` with every old (aliased) key of ``cls`` and its sections renamed to
    the current name. Unknown keys are kept (:func:`from_dict` refuses them); both names → :class:`ConfigError`."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return data
    data = _rename_aliases(cls, data, prefix, where=where, warn=warn)
    out: dict[str, Any] = {}
    for k, v in data.items():
        sub = _section_type(cls, k) if isinstance(k, str) else None
        out[k] = canonical(sub, v, f"{prefix}{k}.", where=where, warn=warn) if sub is not None else v
    return out


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, get_args(tp)))}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: may not be null")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of {tp}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (inner,) = get_args(tp)[:1] or (Any,)
        out = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return out if origin is list else tuple(out)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            f = float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        if f != int(f):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(f)
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) mapping, rejecting unknown keys."""
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    where = f"{prefix}." if prefix else ""
    data = _rename_aliases(cls, data, where)
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key {where}{unknown[0]}; known keys here: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    obj = cls(**kwargs)
    return obj


def to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def apply_overrides(data: dict[str, Any], overrides: list[str], cls: Any = None) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML scalars/lists) to a nested dict copy. With the
    dataclass ``cls``, an old (aliased) field name in a key is replaced by the new one, with a warning."""
    out = _deep_copy(data)
    spelled: dict[str, str] = {}  # canonical dotted key -> the first override key that set it
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        key, raw = item.split("=", 1)
        key = key.strip().lstrip("-")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"{key}: cannot parse value {raw!r}: {e}") from None
        node = out
        parts = key.split(".")
        if cls is not None:
            parts = _canonical_key(cls, parts)
            new = ".".join(parts)
            first = spelled.setdefault(new, key)
            if first != key:  # two spellings of one key: an old name and the new, or two old names
                if new in (first, key):
                    old = key if key != new else first
                    why = f"{old} is the old name of {new}"
                else:
                    why = f"both are old names of {new}"
                raise ConfigError(f"overrides {first} and {key} both given; {why}: keep only {new}")
            if key != new:
                _deprecated(key, new, "override")
            key = new
        for p in parts[:-1]:
            if not isinstance(node.get(p, {}), dict):
                raise ConfigError(f"{key}: {p} is not a section")
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def _canonical_key(cls: Any, parts: list[str]) -> list[str]:
    """The dotted key ``parts`` with old (aliased) field names of ``cls`` and its sections replaced."""
    out: list[str] = []
    for i, p in enumerate(parts):
        new = aliases(cls).get(p, p)
        if (
            new.partition(".")[0] == p and i < len(parts) - 1
        ):  # the section itself (rho.min), not its old field
            new = p
        for q in new.split("."):  # an old name may be a field now inside a section
            out.append(q)
            cls = _section_type(cls, q)
    return out


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def _run_hooks(obj: Any, name: str) -> None:
    """Call each ``name()`` hook of the config ``obj`` and its sections, bottom-up (a section before its owner);
    a ValueError a hook raises becomes a :class:`ConfigError`."""
    if not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        _run_hooks(getattr(obj, f.name), name)
    hook = getattr(obj, name, None)
    if callable(hook):
        try:
            hook()
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError(str(e)) from None


def validated(obj: T) -> T:
    """A validated deep copy of the config ``obj``: every ``validate()`` hook run bottom-up, and each ``resolve()``
    hook after them (it fills values that a null stood for, such as an algorithm's preset)."""
    obj = copy.deepcopy(obj)
    _run_hooks(obj, "validate")
    _run_hooks(obj, "resolve")
    return obj


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults of ``cls`` ← YAML at ``path`` (may ``include:`` a base file) ← ``overrides``; then validate and
    resolve (:func:`validated`)."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml(Path(path), cls=cls)
    data = apply_overrides(data, list(overrides or []), cls)
    return validated(from_dict(cls, data))


def resolved_mapping(cls: Any, data: Any) -> Any:
    """A saved config mapping (a run's config.yaml, maybe written by an older version: old names, nulls that
    stood for a preset) as the validated, resolved config it loads into, as a nested dict; when it no longer
    loads (keys since removed, values since refused), ``data`` with its old names renamed."""
    data = canonical(cls, data, warn=False)
    try:
        return to_dict(validated(from_dict(cls, data)))
    except ConfigError:
        return data


def read_yaml(path: Path, _seen: tuple[Path, ...] = (), *, cls: Any = None) -> dict[str, Any]:
    """Read a YAML mapping; a top-level ``include: other.yaml`` (relative to the file) is merged underneath.
    With the dataclass ``cls``, each file's old (aliased) keys are renamed before merging (:func:`canonical`)."""
    if path.resolve() in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path.resolve()))
        raise ConfigError(f"{path}: include cycle ({chain})")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    base = data.pop("include", None)
    if cls is not None:
        data = canonical(cls, data, where=str(path))
    if base:
        data = _merge(read_yaml((path.parent / base).resolve(), (*_seen, path.resolve()), cls=cls), data)
    return data


def _merge(base: dict, top: dict) -> dict:
    out = _deep_copy(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else _deep_copy(v)
    return out


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False)


__all__ = [
    "ConfigError",
    "aliases",
    "apply_overrides",
    "canonical",
    "dump_yaml",
    "from_dict",
    "load_config",
    "read_yaml",
    "resolved_mapping",
    "to_dict",
    "validated",
]

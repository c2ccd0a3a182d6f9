"""Frozen dataclass configs: JSON round trip and overrides. Component configs live next to
their component; this module only holds the shared helpers."""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from expportrait.errors import UserError

T = TypeVar("T")


def to_dict(cfg: Any) -> dict:
    """A dataclass (possibly nested) as plain JSON-able data."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type[T], data: dict) -> T:
    """Build ``cls`` from ``data``; unknown keys and values of the wrong type are a one-line
    ``UserError`` (strict), nested dataclasses built, JSON lists turned into tuples."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(cls)
    if not isinstance(data, dict):
        raise UserError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise UserError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    kwargs = {key: _coerce(value, hints.get(key), f"{cls.__name__}.{key}") for key, value in data.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:   # a config's own __post_init__ checks
        raise UserError(f"{cls.__name__}: {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against the type ``hint`` (JSON scalars, tuples, optionals, literals,
    nested dataclasses); anything unchecked passes through."""
    if hint is None or hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except UserError as exc:
                errors.append(exc)
        raise errors[0] if errors else UserError(f"{where}: unexpected value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise UserError(f"{where} must be one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    if origin is tuple or hint is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if args and len(args) != len(value):
            raise UserError(f"{where} must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args)) if args else tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"{where} must be a string, got {value!r}")
        return value
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where} must be an object, got {value!r}")
        return value
    return value


def load_json(cls: type[T], path: str | Path) -> T:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"config not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"config {path} is not valid JSON: {exc}") from None
    return from_dict(cls, data)


def override(cfg: T, **changes: Any) -> T:
    """``dataclasses.replace`` that ignores ``None`` values (unset CLI flags)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})

"""``key=value`` command-line arguments of the tools, checked against a dataclass."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
NULL_WORDS = ("null", "none")
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")


def usage(cls: type, tool: str) -> str:
    """One-line usage naming every key (required ones first) with its default."""
    parts = []
    for field in sorted(dataclasses.fields(cls), key=lambda f: _has_default(f)):
        default = _show(field.default) if _has_default(field) else "..."
        parts.append(f"{field.name}={default}")
    return f"usage: python -m tinymem.tools.{tool} " + " ".join(parts)


def parse_key_values(argv: Sequence[str], cls: type[T]) -> T:
    """Build ``cls`` from ``key=value`` strings; a bad key or value raises ValueError naming it."""
    fields = {field.name: field for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for arg in argv:
        key, sep, text = arg.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {arg!r}")
        if key not in fields:
            raise ValueError(f"unknown key {key!r}; expected one of {sorted(fields)}")
        values[key] = _convert(key, text, hints[key])
    missing = [name for name, field in fields.items() if not _has_default(field)]
    missing = [name for name in missing if name not in values]
    if missing:
        raise ValueError(f"missing {', '.join(f'{name}=...' for name in missing)}")
    return cls(**values)


def listed_files(spec: str, key: str, wanted: Callable[[Path], bool], kind: str) -> list[Path]:
    """The files named by `spec`, a comma-separated list of files and folders: a file as given, a
    folder's `wanted` files sorted. A missing entry, or no file at all, raises ValueError naming
    `key` (`kind`: the files looked for, as the message names them)."""
    files: list[Path] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        path = Path(part)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if wanted(p)))
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"{key}: no file or folder {part!r}")
    if not files:
        raise ValueError(f"{key}: no {kind} in {spec!r}")
    return files


def _show(value: Any) -> str:
    """A default as it is typed on the command line (null, true/false, quoted if spaced)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return f"'{value}'" if " " in str(value) else str(value)


def _has_default(field: dataclasses.Field[Any]) -> bool:
    return field.default is not dataclasses.MISSING


def _convert(key: str, text: str, hint: Any) -> Any:
    """Convert ``text`` to the annotated type (int, float, bool, str, or one of them | None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if type(None) in options and text.strip().lower() in NULL_WORDS:
        return None
    kind = next(option for option in options if option is not type(None))
    if kind is bool:
        word = text.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError(f"{key}: expected true or false, got {text!r}")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(
                f"{key}: expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
    return text

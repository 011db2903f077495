"""Reading text files: UTF-8 with or without a byte-order mark; a bad byte names file and line.

Every reader of a text input (AVA CSVs and label maps, proposals, caption JSONL, EK-100 CSVs,
Breakfast text files, frame lists, JSON tables) goes through here, so a BOM written by a
spreadsheet never becomes part of the first field and a non-UTF-8 byte is a `DataFormatError`
reading ``<file>:<line>: not UTF-8 text ...`` instead of a bare `UnicodeDecodeError`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from tinymem.errors import data_error
from tinymem.paths import PathType

UTF8_BOM = b"\xef\xbb\xbf"


def decode_text(path: PathType, data: bytes) -> str:
    """The UTF-8 text of `data` (read from `path`), BOM stripped; a bad byte names its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - data.rfind(b"\n", 0, e.start)
        raise data_error(
            path,
            f"not UTF-8 text (byte 0x{data[e.start]:02x} at column {column}); save the file as "
            "UTF-8",
            line,
        ) from None


def read_bytes(path: PathType) -> bytes:
    """A text file's bytes with any UTF-8 BOM removed, checked to be UTF-8 (for byte parsers)."""
    data = _read(path)
    decode_text(path, data)
    return data.removeprefix(UTF8_BOM)


def read_text(path: PathType) -> str:
    """A text file's content as a string (UTF-8, BOM stripped)."""
    return decode_text(path, _read(path))


def open_text(path: PathType) -> io.StringIO:
    """A text file as an in-memory text stream for `csv.reader` (newlines kept as written)."""
    return io.StringIO(read_text(path), newline="")


def read_json(path: PathType, expected: str) -> Any:
    """A JSON file's value; invalid JSON names the file, line and `expected` (what it holds)."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise data_error(path, f"{expected}, got invalid JSON ({e.msg})", e.lineno) from None


def _read(path: PathType) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise data_error(path, f"expected a readable text file ({e.strerror})") from None

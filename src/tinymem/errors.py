"""Errors raised for malformed input files."""

from __future__ import annotations

from os import PathLike


class DataFormatError(ValueError):
    """A malformed input file; the message names the file, the line and what was expected."""


def data_error(path: str | PathLike[str], message: str, line: int | None = None) -> DataFormatError:
    """Build a DataFormatError reading ``path:line: message`` (``path: message`` without a line)."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return DataFormatError(f"{where}: {message}")

"""Path arguments: what every file-reading function of the package accepts."""

from __future__ import annotations

from os import PathLike

PathType = str | PathLike[str]

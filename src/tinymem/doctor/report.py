"""The doctor's report: one row per check (ok / warning / error, with the file and line)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from tinymem.errors import DataFormatError

T = TypeVar("T")
STYLES = {"ok": "green", "warning": "yellow", "error": "bold red"}


class Status(StrEnum):
    """Outcome of one check."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Check:
    """One row of the report."""

    name: str  # what was checked
    status: Status
    detail: str  # what was found (counts, the problem)
    where: str = ""  # file (and line) the row is about


def split_location(message: str) -> tuple[str, str]:
    """(where, what) of a DataFormatError message ``path:line: what`` (or ``path: what``)."""
    where, sep, what = message.partition(": ")
    return (where, what) if sep else ("", message)


@dataclass
class Report:
    """The checks of one dataset copy, in the order they ran."""

    title: str
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: Status, detail: str, where: object = "") -> None:
        """Append a row."""
        self.checks.append(Check(name, status, detail, str(where)))

    def ok(self, name: str, detail: str, where: object = "") -> None:
        """Append an ok row."""
        self.add(name, Status.OK, detail, where)

    def warning(self, name: str, detail: str, where: object = "") -> None:
        """Append a warning row."""
        self.add(name, Status.WARNING, detail, where)

    def error(self, name: str, detail: str, where: object = "") -> None:
        """Append an error row."""
        self.add(name, Status.ERROR, detail, where)

    def compare(self, name: str, found: object, official: Mapping[str, object] | None) -> None:
        """A count row: ok when it equals ``official[name]`` (the release's count), else a
        warning (a subset?). ``official=None`` (a synthetic world): the count alone."""
        if official is None:
            self.ok(name, f"{found} (synthetic world: no official count)")
        elif found == official[name]:
            self.ok(name, f"{found}, as the official release")
        else:
            self.warning(name, f"{found}, the official release has {official[name]}")

    def attempt(self, name: str, read: Callable[[], T]) -> T | None:
        """``read()``, or None with an error row naming the file and line when it raises
        DataFormatError or OSError (a file the config names is missing or malformed)."""
        try:
            return read()
        except DataFormatError as e:
            where, what = split_location(str(e))
            self.error(name, what, where)
        except OSError as e:
            self.error(name, f"expected a readable file ({e.strerror})", e.filename or "")
        return None

    def count(self, status: Status) -> int:
        """Number of rows with ``status``."""
        return sum(check.status == status for check in self.checks)

    @property
    def failed(self) -> bool:
        """Whether any check is an error."""
        return self.count(Status.ERROR) > 0

    def table(self) -> Table:
        """The report as a rich table."""
        table = Table(title=self.title, show_lines=False)
        for column in ("check", "status", "details", "where"):
            table.add_column(column, overflow="fold")
        for check in self.checks:
            status = f"[{STYLES[check.status.value]}]{check.status.value}[/]"
            table.add_row(check.name, status, check.detail, check.where)
        return table

    def print(self, console: Console) -> None:
        """Print the table and a one-line summary."""
        console.print(self.table())
        console.print(
            f"{self.count(Status.OK)} ok, {self.count(Status.WARNING)} warnings, "
            f"{self.count(Status.ERROR)} errors"
        )

"""What a bench report is and how it is written: rich tables, CSV, PNG and markdown."""

from __future__ import annotations

import csv
import os
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table
from rich.text import Text

Row = dict[str, Any]  # one CSV row: column -> str | int | float | bool
Cell = str | Callable[[Row], Any]  # what a grid shows of a row: the value at a key, or computed
Column = str | tuple[str, Cell]  # a key shown under its own name, or (header, cell)
PNG_DPI = 120


@dataclass
class Grid:
    """A printed table: a title, column names and rows of already formatted cells."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        """Append a row (cells are turned into strings)."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([str(cell) for cell in cells])

    def add_rows(self, rows: Iterable[Row], *cells: Cell) -> None:
        """Append a line per row of `rows`: each cell the row's value at a key, or `cell(row)`."""
        for row in rows:
            self.add(*(cell(row) if callable(cell) else row[cell] for cell in cells))

    @classmethod
    def of_rows(cls, title: str, rows: Iterable[Row], *columns: Column) -> Grid:
        """A grid of a line per row: a key shown under its own name, or a (header, cell) pair."""
        pairs = [(c, c) if isinstance(c, str) else c for c in columns]
        grid = cls(title, [header for header, _ in pairs])
        grid.add_rows(rows, *(cell for _, cell in pairs))
        return grid

    def rich(self) -> Table:
        """The table for the terminal."""
        table = Table(title=self.title, title_justify="left")
        for column in self.columns:
            table.add_column(column)
        for row in self.rows:
            table.add_row(*(Text(cell) for cell in row))  # literal text, no rich markup
        return table

    def markdown(self) -> str:
        """The table as GitHub markdown (title as a bold line above it)."""
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Report:
    """One report's results: long-form CSV rows, printed grids, notes and a figure."""

    name: str  # file stem of the CSV and PNG
    rows: list[Row]
    grids: list[Grid]
    notes: list[str] = field(default_factory=list)  # definitions and caveats, printed below
    figure: Figure | None = None


def write_csv(path: Path, rows: Sequence[Row]) -> None:
    """Write rows (the union of their keys, in first-seen order) as a CSV file."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _parse(value: str) -> Any:
    if value in ("True", "False"):
        return value == "True"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def read_rows(path: str | os.PathLike[str]) -> list[Row]:
    """Rows of a bench CSV with numbers and booleans parsed back (empty cells stay '')."""
    with Path(path).open(newline="") as handle:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def write_report(report: Report, out_dir: Path, console: Console) -> list[Path]:
    """Print the report's grids and notes; write `<name>.csv` and `<name>.png`; return the files."""
    for grid in report.grids:
        console.print(grid.rich())
    for note in report.notes:
        console.print(f"  {note}", markup=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{report.name}.csv"]
    write_csv(written[0], report.rows)
    if report.figure is not None:
        written.append(out_dir / f"{report.name}.png")
        report.figure.savefig(written[-1], dpi=PNG_DPI, bbox_inches="tight")
    return written


def markdown(report: Report) -> str:
    """The report's grids and notes as markdown (for summary.md and the README)."""
    parts = [grid.markdown() for grid in report.grids]
    if report.notes:
        parts.append("\n".join(f"- {note}" for note in report.notes))
    return "\n\n".join(parts)


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux; the architecture elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine the numbers come from: CPU, cores, threads, load, GPU, library versions."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": round(load[0], 2),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def median_ratio(times: Mapping[str, Sequence[float]], key: str, base: str) -> float:
    """Median over repeats of times[key][r] / times[base][r] (paired, same round)."""
    ratios = sorted(a / b for a, b in zip(times[key], times[base], strict=True))
    middle = len(ratios) // 2
    return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2


def fmt(value: float, digits: int = 1) -> str:
    """A number with a fixed count of decimals."""
    return f"{value:.{digits}f}"


def shown(key: str, spec: str, suffix: str = "") -> Callable[[Row], str]:
    """A cell: `row[key]` in format `spec` followed by `suffix`, "-" where it is not a number."""

    def cell(row: Row) -> str:
        value = row[key]
        return f"{value:{spec}}{suffix}" if isinstance(value, int | float) else "-"

    return cell


def flag(key: str, no: str = "no") -> Callable[[Row], str]:
    """A cell: "yes" where `row[key]` is true, else `no`."""
    return lambda row: "yes" if row[key] else no


def pivot(
    rows: Iterable[Row], key: Callable[[Row], tuple], column: str, cell: Callable[[Row], str]
) -> tuple[list[Any], dict[tuple, dict[Any, str]]]:
    """Group rows by `key` into one line each, with one cell per value of `column`."""
    values: list[Any] = []
    lines: dict[tuple, dict[Any, str]] = {}
    for row in rows:
        if row[column] not in values:
            values.append(row[column])
        lines.setdefault(key(row), {})[row[column]] = cell(row)
    return values, lines

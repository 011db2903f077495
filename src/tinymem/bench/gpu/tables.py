"""The GPU run's tables: each part's rows as a bench `Report`, and the text+region / vision ratios.

The ratios table is derived from the throughput rows: at each l, text+region's clips/s and peak
memory over vision's (the paper's efficiency claim: above 1 for clips/s, below 1 for memory), and
each one's step time and peak memory over no memory, per mode, batch, attention path and
compilation.
"""

from __future__ import annotations

from collections.abc import Sequence

from tinymem.bench.latency import NO_MEMORY
from tinymem.bench.report import Grid, Report, Row, flag, fmt, shown

OURS, DENSE = "text+region", "vision"
GIB = 1024.0
# The columns naming a measured setting, first in the throughput and the ratios tables.
SETTING_COLUMNS = ("mode", "batch", "attention", ("compiled", flag("compiled")))


def _gib(mib: object) -> str:
    return fmt(mib / GIB, 2) if isinstance(mib, int | float) else "-"


def _find(rows: Sequence[Row], **match: object) -> Row | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def throughput_report(name: str, rows: Sequence[Row], title: str, notes: list[str]) -> Report:
    """Clips/s, time per step, peak memory (and compile time) of every measured configuration."""
    grid = Grid.of_rows(
        title,
        rows,
        *SETTING_COLUMNS,
        *("memory", "l"),
        ("clips / s", shown("clips_per_s", ".2f")),
        ("ms / step", shown("ms_per_step", ".1f")),
        ("peak GiB", lambda r: _gib(r["peak_mib"])),
        ("first step s", shown("first_step_s", ".2f")),
        ("compile s", shown("compile_s", ".1f")),
    )
    return Report(name, list(rows), [grid], notes)


def _over(value: object, base: object, percent: bool) -> object:
    if not isinstance(value, int | float) or not isinstance(base, int | float) or not base:
        return ""
    return 100 * (value / base - 1) if percent else value - base


def ratio_rows(rows: Sequence[Row]) -> list[Row]:
    """text+region / vision at each l, and each one's cost over none, per measured setting."""
    settings = []
    for r in rows:
        key = (r["mode"], r["batch"], r["attention"], r["compiled"])
        if key not in settings:
            settings.append(key)
    out = []
    for mode, batch, attention, compiled in settings:
        same = [
            r
            for r in rows
            if (r["mode"], r["batch"], r["attention"], r["compiled"])
            == (mode, batch, attention, compiled)
        ]
        none = _find(same, memory=NO_MEMORY)
        for length in sorted({r["l"] for r in same if r["memory"] == OURS}):
            ours, dense = _find(same, memory=OURS, l=length), _find(same, memory=DENSE, l=length)
            if ours is None or dense is None:
                continue
            row: Row = {
                "device": ours["device"],
                "mode": mode,
                "batch": batch,
                "attention": attention,
                "compiled": compiled,
                "l": length,
                "clips_per_s_ratio": ours["clips_per_s"] / dense["clips_per_s"],
                "peak_memory_ratio": _ratio(ours["peak_mib"], dense["peak_mib"]),
            }
            for kind, measured in ((OURS, ours), (DENSE, dense)):
                base = none or {}
                row[f"{kind}_time_over_none_pct"] = _over(
                    measured["ms_per_step"], base.get("ms_per_step"), percent=True
                )
                row[f"{kind}_memory_over_none_mib"] = _over(
                    measured["peak_mib"], base.get("peak_mib"), percent=False
                )
            out.append(row)
    return out


def _ratio(value: object, base: object) -> object:
    if isinstance(value, int | float) and isinstance(base, int | float) and base:
        return value / base
    return ""


def ratios_report(rows: Sequence[Row]) -> Report:
    """The paper's efficiency claim on the device: text+region against vision at each l."""
    derived = ratio_rows(rows)
    grid = Grid.of_rows(
        "text+region / vision (TinyMem / MeMViT dense memory) at each l; cost over no memory",
        derived,
        *SETTING_COLUMNS,
        "l",
        ("clips/s ratio", shown("clips_per_s_ratio", ".3f")),
        ("peak memory ratio", shown("peak_memory_ratio", ".3f")),
        ("time over none: text+region", shown(f"{OURS}_time_over_none_pct", "+.1f", "%")),
        ("vision", shown(f"{DENSE}_time_over_none_pct", "+.1f", "%")),
        ("memory over none MiB: text+region", shown(f"{OURS}_memory_over_none_mib", "+.0f")),
        ("vision", shown(f"{DENSE}_memory_over_none_mib", "+.0f")),
    )
    notes = [
        "clips/s ratio above 1: text+region trains (or streams) faster than vision at that l; "
        "peak memory ratio below 1: it needs less device memory. Time over none = step time "
        "over no memory's; memory over none = peak allocated memory minus no memory's (MiB, "
        "GPU only; text+region's includes the weights of its frozen text tower). Rows appear "
        "where both kinds were measured in the same setting."
    ]
    return Report("ratios", derived, [grid], notes)


def numerics_report(rows: Sequence[Row]) -> Report:
    """Each comparison's relative logit difference and whether it is within tolerance."""
    grid = Grid.of_rows(
        "Logit differences on a fixed input, memory full: max |a - b| / max |b|",
        rows,
        *("memory", "l", "batch", "comparison"),
        ("difference", shown("relative_difference", ".2e")),
        ("tolerance", shown("tolerance", ".0e")),
        ("within", flag("within", no="NO")),
    )
    return Report("numerics", list(rows), [grid])


def data_report(rows: Sequence[Row], conclusion: str, notes: list[str]) -> Report:
    """Clips/s and device busy fraction of training on the DataModule, per worker count."""
    grid = Grid.of_rows(
        "Training on the DataModule's batches: clips / s and device busy fraction by workers",
        rows,
        "workers",
        ("clip C x T x H x W", "clip"),
        *("batch", "batches"),
        ("clips / s", shown("clips_per_s", ".2f")),
        ("busy", shown("busy_fraction", ".0%")),
        ("device clips/s", shown("device_clips_per_s", ".2f")),
    )
    return Report("data", list(rows), [grid], [conclusion, *notes])

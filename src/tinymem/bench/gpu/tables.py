"""The GPU run's tables: each part's rows as a bench `Report`, and the text+region / vision ratios.

The ratios table is derived from the throughput rows: at each l, text+region's clips/s and peak
memory over vision's (the paper's efficiency claim: above 1 for clips/s, below 1 for memory), and
each one's step time and peak memory over no memory, per mode, batch, attention path and
compilation.
"""

from __future__ import annotations

from collections.abc import Sequence

from tinymem.bench.latency import NO_MEMORY
from tinymem.bench.report import Grid, Report, Row, fmt

OURS, DENSE = "text+region", "vision"
GIB = 1024.0


def _gib(mib: object) -> str:
    return fmt(mib / GIB, 2) if isinstance(mib, int | float) else "-"


def _find(rows: Sequence[Row], **match: object) -> Row | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def throughput_report(name: str, rows: Sequence[Row], title: str, notes: list[str]) -> Report:
    """Clips/s, time per step, peak memory (and compile time) of every measured configuration."""
    grid = Grid(
        title,
        ["mode", "batch", "attention", "compiled", "memory", "l", "clips / s", "ms / step"]
        + ["peak GiB", "first step s", "compile s"],
    )
    for r in rows:
        compile_s = fmt(r["compile_s"]) if r["compile_s"] != "" else "-"
        grid.add(
            r["mode"],
            r["batch"],
            r["attention"],
            "yes" if r["compiled"] else "no",
            r["memory"],
            r["l"],
            fmt(r["clips_per_s"], 2),
            fmt(r["ms_per_step"]),
            _gib(r["peak_mib"]),
            fmt(r["first_step_s"], 2),
            compile_s,
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


def _cell(value: object, digits: int, suffix: str = "") -> str:
    return f"{value:+.{digits}f}{suffix}" if isinstance(value, int | float) else "-"


def ratios_report(rows: Sequence[Row]) -> Report:
    """The paper's efficiency claim on the device: text+region against vision at each l."""
    derived = ratio_rows(rows)
    grid = Grid(
        "text+region / vision (TinyMem / MeMViT dense memory) at each l; cost over no memory",
        ["mode", "batch", "attention", "compiled", "l", "clips/s ratio", "peak memory ratio"]
        + ["time over none: text+region", "vision", "memory over none MiB: text+region", "vision"],
    )
    for r in derived:
        peak = r["peak_memory_ratio"]
        grid.add(
            r["mode"],
            r["batch"],
            r["attention"],
            "yes" if r["compiled"] else "no",
            r["l"],
            fmt(r["clips_per_s_ratio"], 3),
            fmt(peak, 3) if peak != "" else "-",
            _cell(r[f"{OURS}_time_over_none_pct"], 1, "%"),
            _cell(r[f"{DENSE}_time_over_none_pct"], 1, "%"),
            _cell(r[f"{OURS}_memory_over_none_mib"], 0),
            _cell(r[f"{DENSE}_memory_over_none_mib"], 0),
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
    grid = Grid(
        "Logit differences on a fixed input, memory full: max |a - b| / max |b|",
        ["memory", "l", "batch", "comparison", "difference", "tolerance", "within"],
    )
    for r in rows:
        grid.add(
            r["memory"],
            r["l"],
            r["batch"],
            r["comparison"],
            f"{r['relative_difference']:.2e}",
            f"{r['tolerance']:.0e}",
            "yes" if r["within"] else "NO",
        )
    return Report("numerics", list(rows), [grid])


def data_report(rows: Sequence[Row], conclusion: str, notes: list[str]) -> Report:
    """Clips/s and device busy fraction of training on the DataModule, per worker count."""
    grid = Grid(
        "Training on the DataModule's batches: clips / s and device busy fraction by workers",
        [
            "workers",
            "clip C x T x H x W",
            "batch",
            "batches",
            "clips / s",
            "busy",
            "device clips/s",
        ],
    )
    for r in rows:
        device_rate = r["device_clips_per_s"]
        grid.add(
            r["workers"],
            r["clip"],
            r["batch"],
            r["batches"],
            fmt(r["clips_per_s"], 2),
            f"{r['busy_fraction']:.0%}",
            fmt(device_rate, 2) if device_rate != "" else "-",
        )
    return Report("data", list(rows), [grid], [conclusion, *notes])

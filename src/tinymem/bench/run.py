"""Run the configured bench reports, write their files and a markdown summary of the run."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from tinymem.bench.backbone import backbone_report
from tinymem.bench.data_pipeline import data_report
from tinymem.bench.flops import flops_report, flops_rows
from tinymem.bench.latency import latency_report
from tinymem.bench.report import Report, machine, markdown, write_report
from tinymem.bench.targets import targets_report
from tinymem.bench.tokens import tokens_report, tokens_rows

SUMMARY = "summary.md"
LOG_WIDTH = 160  # console columns when the output is not a terminal
REPORTS = ("tokens", "flops", "latency", "data", "backbone")
# `readme=PATH` rewrites what stands between these two lines of PATH.
README_BEGIN = "<!-- tinymem.bench tables: begin (rewritten by `make bench`) -->"
README_END = "<!-- tinymem.bench tables: end -->"


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _selected(names: list[str], table: Mapping[str, list[str]], key: str) -> dict[str, list[str]]:
    unknown = [name for name in names if name not in table]
    if unknown:
        raise ValueError(f"{key}: no overrides for {unknown}; known: {sorted(table)}")
    return {name: table[name] for name in names}


def _builders(cfg: Mapping[str, Any]) -> dict[str, Callable[[], Report]]:
    clips = cfg["clip_overrides"] or {}
    models = {name: [f"model={name}", *clips.get(name, [])] for name in cfg["models"]}
    sweep = (cfg["memories"], cfg["lengths"], cfg["text_width"])  # memory kinds, l, text width
    data_sets = _selected(cfg["data"]["sets"], cfg["data"]["overrides"], "data.overrides")
    return {
        "tokens": lambda: tokens_report(tokens_rows(models, *sweep)),
        "flops": lambda: flops_report(
            flops_rows(models, *sweep, cfg["flops"]["paths"]), cfg["flops"]["text_tower"]
        ),
        "latency": lambda: latency_report(cfg["latency"], cfg["device"], cfg["seed"]),
        "data": lambda: data_report(
            data_sets, cfg["data"]["workers"], cfg["data"]["batches"], cfg["data"].get("engine")
        ),
        "backbone": lambda: backbone_report(
            cfg["backbone"]["overrides"], cfg["backbone"]["repeats"], _device(cfg["device"])
        ),
    }


def run_bench(
    cfg: DictConfig, out_dir: Path, console: Console | None = None, command: str = "run_bench"
) -> dict[str, Report]:
    """Run `cfg.reports` in order; write CSV/PNG per report, targets and `summary.md`.

    `command` is how the run was started, for the summary.
    """
    if console is None:
        console = Console()
        if not console.is_terminal:  # a log file: wide enough for the pivoted tables
            console = Console(width=LOG_WIDTH)
    plain = {  # resolved, except `paths` (its output_dir needs a running Hydra job)
        key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        for key, value in cfg.items()
        if key != "paths"
    }
    unknown = [name for name in plain["reports"] if name not in REPORTS]
    if unknown:
        raise ValueError(f"reports: unknown {unknown}; expected names from {list(REPORTS)}")
    if plain.get("readme"):  # checked before hours of measuring, not after
        if not plain.get("docs_dir"):
            raise ValueError("readme: needs docs_dir (the README shows the figures copied there)")
        _marked_span(Path(plain["readme"]))
    builders = _builders(plain)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    threads = torch.get_num_threads()
    if plain.get("threads"):
        torch.set_num_threads(int(plain["threads"]))
    before = machine()
    reports: dict[str, Report] = {}
    try:
        for name in plain["reports"]:
            console.rule(f"tinymem.bench: {name}")
            start = time.perf_counter()
            reports[name] = builders[name]()
            write_report(reports[name], out_dir, console)
            console.print(f"  ({name}: {time.perf_counter() - start:.0f} s)")
    finally:
        torch.set_num_threads(threads)
    targets = targets_report(reports)
    if targets.grids[0].rows:
        console.rule("tinymem.bench: targets")
        write_report(targets, out_dir, console)
        reports["targets"] = targets
    after = machine()
    header = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": before,
        "load_average_1m_after": after["load_average_1m"],
    }
    (out_dir / "run.json").write_text(json.dumps(header, indent=2) + "\n")
    summary = _summary(header, reports)
    (out_dir / SUMMARY).write_text(summary)
    console.print(f"tinymem.bench: wrote {out_dir} in {header['wall_s']} s")
    if plain.get("docs_dir"):
        _publish(out_dir, Path(plain["docs_dir"]), reports)
        console.print(f"tinymem.bench: copied the figures and {SUMMARY} to {plain['docs_dir']}")
    if plain.get("readme"):
        readme = Path(plain["readme"])
        figures = Path(os.path.relpath(plain["docs_dir"], readme.parent))
        replace_between_markers(readme, _readme_tables(header, reports, figures))
        console.print(f"tinymem.bench: rewrote the tables between the bench markers of {readme}")
    return reports


def replace_between_markers(path: Path, text: str) -> None:
    """Replace what stands between `README_BEGIN` and `README_END` in `path` with `text`."""
    content, begin, end = _marked_span(path)
    path.write_text(f"{content[:begin]}\n{text.strip()}\n{content[end:]}")


def _marked_span(path: Path) -> tuple[str, int, int]:
    """The text of `path` and the span between its bench markers (an error naming them if not)."""
    content = path.read_text() if path.is_file() else ""
    begin, end = content.find(README_BEGIN), content.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(
            f"readme={path}: expected a line {README_BEGIN!r} and, after it, a line "
            f"{README_END!r} around the tables to rewrite"
        )
    return content, begin + len(README_BEGIN), end


def _run_line(header: Mapping[str, Any]) -> str:
    box = header["machine"]
    return (
        f"`{header['command']}` took {header['wall_s']} s on {box['cpu']} ({box['cores']} cores, "
        f"{box['torch_threads']} torch threads), GPU: {box['gpu']}, torch {box['torch']}; load "
        f"average (1 min) {box['load_average_1m']} at the start, "
        f"{header['load_average_1m_after']} at the end."
    )


def _readme_tables(header: Mapping[str, Any], reports: Mapping[str, Report], figures: Path) -> str:
    """The run line, the targets, then each report's tables and figure (no notes)."""
    lines = [f"Run of {header['date']}: {_run_line(header)}"]
    ordered = sorted(reports.items(), key=lambda item: item[0] != "targets")
    for name, report in ordered:
        lines += ["", *(f"{grid.markdown()}\n" for grid in report.grids)]
        if report.figure is not None:
            lines.append(f"![{name}]({(figures / f'{name}.png').as_posix()})")
    return "\n".join(lines)


def _summary(header: Mapping[str, Any], reports: Mapping[str, Report]) -> str:
    lines = [f"# tinymem.bench run of {header['date']}", "", _run_line(header)]
    for name, report in reports.items():
        lines += ["", f"## {name}", "", markdown(report)]
        if report.figure is not None:
            lines += ["", f"![{name}]({name}.png)"]
    return "\n".join(lines) + "\n"


def _publish(out_dir: Path, docs_dir: Path, reports: Mapping[str, Report]) -> None:
    """Copy the run's figures and summary into `docs_dir` (what the README shows)."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    for name, report in reports.items():
        if report.figure is not None:
            shutil.copyfile(out_dir / f"{name}.png", docs_dir / f"{name}.png")
    shutil.copyfile(out_dir / SUMMARY, docs_dir / SUMMARY)

"""`python -m tinymem.bench gpu`: run the GPU parts within their budgets, writing as it goes.

Parts (config `conf/bench_gpu.yaml`, in the order of `parts`), each a table written as
`<name>.csv`, all of them in `summary.md`:

- `numerics`: bf16 autocast vs float32 logits, eager vs sdpa attention, on a fixed input;
- `train`: training clips/s and peak memory of none, vision and text+region at every l, per
  attention path (not compiled);
- `inference`: the same for streaming inference at each batch size;
- `data`: the training DataModule feeding the device: clips/s and busy fraction per workers;
- `compile`: `torch.compile`d training and inference of the configurations in `compile`, with
  the compile time apart;

plus `ratios`: text+region / vision at each l and each one's cost over no memory, derived from
the throughput rows. The files are rewritten after every measured configuration.
"""

from __future__ import annotations

import datetime
import functools
import gc
import json
import time
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from tinymem.bench.gpu import feed, numerics, throughput
from tinymem.bench.gpu.budget import Item, PartLog, run_part
from tinymem.bench.gpu.clock import device_label, free_device_memory
from tinymem.bench.gpu.tables import (
    data_report,
    numerics_report,
    ratios_report,
    throughput_report,
)
from tinymem.bench.latency import NO_MEMORY, Stream
from tinymem.bench.report import Report, Row, machine, markdown, write_csv

PARTS = ("numerics", "train", "inference", "data", "compile")
TABLES = ("ratios", "train", "inference", "compile", "numerics", "data")  # summary order
SUMMARY = "summary.md"
LOG_WIDTH = 160  # console columns when the output is not a terminal


def gpu_settings(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config (without `paths`, `tiny`, `hydra`); `tiny` merged in for a dry run."""
    if cfg.get("dry_run"):
        cfg = OmegaConf.merge(cfg, cfg.tiny)
    return {
        key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        for key, value in cfg.items()
        if key not in ("paths", "tiny", "hydra")
    }


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device: expected auto, cpu or cuda, got {name!r}")
    return torch.device(name)


class GpuRun:
    """One run: its settings, device, deadline, part logs and the files it keeps rewriting."""

    def __init__(self, cfg: DictConfig, out_dir: Path, console: Console, command: str) -> None:
        self.settings = gpu_settings(cfg)
        unknown = [p for p in self.settings["parts"] if p not in PARTS]
        if unknown:
            raise ValueError(f"parts: unknown {unknown}; expected names from {list(PARTS)}")
        self.device = _device(self.settings["device"])
        self.out_dir, self.console, self.command = out_dir, console, command
        self.started = time.perf_counter()
        self.deadline = self.started + float(self.settings["total_budget_s"])
        self.date = datetime.datetime.now().isoformat(timespec="seconds")
        self.logs: dict[str, PartLog] = {}
        self.preparer: BaseProcess | None = None

    # ------------------------------------------------------------------ running
    def run(self) -> dict[str, Report]:
        """Every part in order; the files are written after each item and at the end."""
        s = self.settings
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.progress(f"device {device_label(self.device)}; writing {self.out_dir}")
        if "data" in s["parts"]:  # forked before the device is initialised
            try:
                self.preparer = feed.start_preparing(self._data_overrides())
            except Exception as error:  # noqa: BLE001 - the data part writes it in-process
                self.progress(f"data set not written ahead ({type(error).__name__}: {error})")
        threads = torch.get_num_threads()
        if s.get("threads"):
            torch.set_num_threads(int(s["threads"]))
        finished = False
        try:
            for name in s["parts"]:
                log = PartLog(name, float(s[name]["budget_s"]))
                self.logs[name] = log
                self.console.rule(f"tinymem.bench gpu: {name}")
                items, summarize = self._items(name)
                run_part(log, items, self.deadline, self.progress, self.after_item, summarize)
                self.progress(log.status())
            finished = True
        finally:
            torch.set_num_threads(threads)
            if self.preparer is not None and self.preparer.is_alive():
                self.preparer.terminate()
            reports = self.write(finished=finished)
        for report in reports.values():
            for grid in report.grids:
                self.console.print(grid.rich())
        self.progress(f"wrote {self.out_dir}")
        return reports

    def progress(self, line: str) -> None:
        """One progress line with the seconds since the start."""
        seconds = time.perf_counter() - self.started
        self.console.print(f"[{seconds:5.0f} s] {line}", markup=False, highlight=False)

    def after_item(self) -> None:
        """Free the item's device memory and rewrite the files."""
        gc.collect()
        free_device_memory(self.device)
        self.write(finished=False)

    # ------------------------------------------------------------------ the parts' items
    def _items(self, name: str) -> tuple[Iterator[Item], Callable[[list[Row]], str]]:
        """The part's items (made lazily, in measuring order) and its progress summary."""
        parts = {
            "numerics": (self._numerics_items, numerics.brief),
            "train": (self._train_items, throughput.brief),
            "inference": (self._inference_items, throughput.brief),
            "data": (self._data_items, feed.brief),
            "compile": (self._compile_items, throughput.brief),
        }
        items, summarize = parts[name]
        return items(), summarize

    def _steps(self, part: str, batch: int) -> throughput.Steps:
        section = self.settings[part]
        return throughput.Steps(
            batch, self.settings["dtype"], section["warmup"], section["repeats"]
        )

    def _configs(self, part: str) -> list[throughput.Config]:
        s = self.settings
        section = s["compile"] if part == "compile" else s
        return throughput.configurations(
            section["memories"],
            section["lengths"],
            section["attention"],
            with_none=section.get("with_none", True),
        )

    def _numerics_items(self) -> Iterator[Item]:
        n, seed = self.settings["numerics"], int(self.settings["seed"])
        tolerances = {"fp32": n["fp32_tolerance"], "bf16": n["bf16_tolerance"]}
        for memory in [*self.settings["memories"], NO_MEMORY]:
            label = f"{memory}@{n['length'] if memory != NO_MEMORY else 0}"
            yield (
                label,
                functools.partial(
                    numerics.numerics_rows,
                    self.settings["model"],
                    memory,
                    n["length"],
                    n["batch"],
                    self.device,
                    tolerances,
                    seed,
                ),
            )

    def _train_items(self) -> Iterator[Item]:
        s = self.settings
        steps = self._steps("train", s["train"]["batch"])
        for config in self._configs("train"):
            yield (
                config.label,
                functools.partial(
                    throughput.train_rows, s["model"], config, self.device, steps, int(s["seed"])
                ),
            )

    def _inference_items(self) -> Iterator[Item]:
        s, batches = self.settings, self.settings["inference"]["batches"]
        steps = self._steps("inference", batches[0])
        for config in self._configs("train"):
            yield (
                config.label,
                functools.partial(
                    throughput.inference_rows,
                    s["model"],
                    config,
                    self.device,
                    steps,
                    batches,
                    int(s["seed"]),
                ),
            )

    def _compile_items(self) -> Iterator[Item]:
        """Training of every configuration first, then inference at each batch size."""
        s, c = self.settings, self.settings["compile"]
        runs = [("train", self._steps("train", s["train"]["batch"]))]
        runs += [("inference", self._steps("inference", b)) for b in c["inference_batches"]]
        for mode, steps in runs:
            for config in self._configs("compile"):
                yield (
                    f"{config.label} {mode} b{steps.batch}",
                    functools.partial(
                        throughput.compiled_rows,
                        s["model"],
                        config,
                        self.device,
                        steps,
                        mode,
                        c["backend"],
                        int(s["seed"]),
                    ),
                )

    def _data_overrides(self) -> list[str]:
        d = self.settings["data"]
        return [*self.settings["model"], *d["memory"], *d["overrides"]]

    def _data_items(self) -> Iterator[Item]:
        """Wait for the data set and build the detector, then one item per worker count."""
        d, overrides = self.settings["data"], self._data_overrides()
        end = min(time.perf_counter() + float(d["budget_s"]), self.deadline)
        built: list[Stream] = []

        def prepare() -> list[Row]:
            if self.preparer is not None:
                self.preparer.join(timeout=max(end - time.perf_counter(), 0))
                if self.preparer.is_alive():
                    raise TimeoutError("the data set was still being written at the budget's end")
                if self.preparer.exitcode != 0:
                    raise RuntimeError(
                        f"writing the data set failed (exit code {self.preparer.exitcode})"
                    )
            built.append(feed.feed_stream(overrides, self.device, int(self.settings["seed"])))
            return []

        def measure(workers: int) -> list[Row]:
            row = feed.feed_row(
                overrides,
                built[0],
                workers,
                self.device,
                self.settings["dtype"],
                int(d["batches"]),
                float(d["seconds"]),
            )
            return [row]

        yield "data set and detector", prepare
        if built:
            for workers in d["workers"]:
                yield f"{workers} workers", functools.partial(measure, workers)

    # ------------------------------------------------------------------ the files
    def reports(self) -> dict[str, Report]:
        """The tables of what was measured so far (a part not run yet has none)."""
        rows = {name: log.rows for name, log in self.logs.items()}
        notes = self._notes()
        reports: dict[str, Report] = {}
        for name, title in (
            ("train", "Training: clips / s, time per step and peak memory, memory full"),
            ("inference", "Streaming inference: clips / s, time per step and peak memory"),
            ("compile", "torch.compile: clips / s and compile time (first step - mean step)"),
        ):
            if name in rows:
                reports[name] = throughput_report(name, rows[name], title, notes.get(name, []))
        speed = [name for name in ("train", "inference", "compile") if name in rows]
        if speed:
            reports["ratios"] = ratios_report([r for name in speed for r in rows[name]])
        if "numerics" in rows:
            reports["numerics"] = numerics_report(rows["numerics"])
        if "data" in rows:
            conclusion = feed.cores_needed(rows["data"], float(self.settings["data"]["busy"]))
            reports["data"] = data_report(rows["data"], conclusion, notes.get("data", []))
        return {name: reports[name] for name in TABLES if name in reports}

    def _notes(self) -> dict[str, list[str]]:
        s = self.settings
        t, i, c, d = s["train"], s["inference"], s["compile"], s["data"]
        model = " ".join(s["model"])
        return {
            "train": [
                f"{model}; batch {t['batch']}, {s['dtype'] or 'float32'} autocast; memory full; "
                f"{t['warmup']} warm-up steps, then the mean of {t['repeats']} steps timed as one "
                "block; peak = allocated device memory (weights, AdamW state, caches, "
                "activations)."
            ],
            "inference": [
                f"{model}; batches {i['batches']}, {s['dtype'] or 'float32'} autocast; memory "
                f"full; {i['warmup']} warm-up steps, mean of {i['repeats']}."
            ],
            "compile": [
                f"backbone.compile(backend={c['backend']!r}) (model.compile=true compiles the "
                "backbone the same way, with inductor, the default backend); "
                "each row is a fresh module compiled from scratch (compiled code reset before "
                "it): its first step compiles (forward and backward in training)."
            ],
            "data": [
                f"{' '.join([*d['memory'], *d['overrides']])}; "
                f"at most {d['batches']} timed batches or {d['seconds']} s per worker count, "
                "after the first batch and the prefetched ones. Busy = device time of the "
                "training steps / wall time; device clips/s = what the device alone would do."
            ],
        }

    def write(self, finished: bool) -> dict[str, Report]:
        """Rewrite every table's CSV, `summary.md` and `run.json`."""
        reports = self.reports()
        for report in reports.values():
            write_csv(self.out_dir / f"{report.name}.csv", report.rows)
        header = self.header(finished)
        (self.out_dir / "run.json").write_text(json.dumps(header, indent=2) + "\n")
        (self.out_dir / SUMMARY).write_text(self.summary(header, reports))
        return reports

    def header(self, finished: bool) -> dict[str, Any]:
        """When, how, where and how far the run got."""
        return {
            "date": self.date,
            "command": self.command,
            "device": device_label(self.device),
            "dry_run": bool(self.settings["dry_run"]),
            "finished": finished,
            "wall_s": round(time.perf_counter() - self.started, 1),
            "total_budget_s": self.settings["total_budget_s"],
            "machine": machine(),
            "parts": {name: log.status() for name, log in self.logs.items()},
        }

    def summary(self, header: Mapping[str, Any], reports: Mapping[str, Report]) -> str:
        """The markdown summary: the run, each part's status, skips and errors, every table."""
        box = header["machine"]
        state = "finished" if header["finished"] else "RUNNING (partial results)"
        kind = "dry run on the CPU: tiny shapes, not GPU figures" if header["dry_run"] else "full"
        lines = [
            f"# tinymem.bench gpu run of {header['date']}",
            "",
            f"Device: **{header['device']}** ({kind}). `{header['command']}`: {state} after "
            f"{header['wall_s']} s (total budget {header['total_budget_s']} s); CPU {box['cpu']} "
            f"({box['cores']} cores), torch {box['torch']}, load average (1 min) "
            f"{box['load_average_1m']}.",
            "",
            "## Parts",
            "",
        ]
        for log in self.logs.values():
            lines.append(f"- {log.status()}")
            lines += [f"  - skipped (budget): {label}" for label in log.skipped]
            lines += [f"  - error: {error}" for error in log.errors]
        not_run = [p for p in self.settings["parts"] if p not in self.logs]
        lines += [f"- {name}: not started" for name in not_run]
        for name, report in reports.items():
            table = markdown(report) if report.rows else "Nothing measured."
            lines += ["", f"## {name}", "", table]
        return "\n".join(lines) + "\n"


def run_gpu(
    cfg: DictConfig, out_dir: Path, console: Console | None = None, command: str = "run_gpu"
) -> dict[str, Report]:
    """Run the configured GPU parts into `out_dir`; return the tables (see the module doc)."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=LOG_WIDTH)
    return GpuRun(cfg, out_dir, console, command).run()

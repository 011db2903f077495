"""The GPU run-book (`python -m tinymem.bench gpu`): its CPU dry run, budgets and derived tables."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict
from rich.console import Console

from helpers.cli_runs import cli_env
from helpers.common import TINY_WORLD
from tinymem.bench.__main__ import gpu_arguments
from tinymem.bench.gpu import budget as budget_module
from tinymem.bench.gpu import run_gpu
from tinymem.bench.gpu.budget import PartLog, run_part
from tinymem.bench.gpu.feed import cores_needed
from tinymem.bench.gpu.run import PARTS, TABLES, gpu_settings
from tinymem.bench.gpu.tables import ratio_rows
from tinymem.bench.gpu.throughput import Config, configurations
from tinymem.bench.models import compose_train
from tinymem.bench.report import read_rows
from tinymem.config import compose_config


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: 2 threads crawl on a busy 2-core box (the dry run sets 1 too)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _dry_run(tiny_world: Path, overrides: list[str] = ()):
    cfg = compose_config("bench_gpu", ["dry_run=true", *overrides])
    world = [f"data.synthetic.{k}={v}" for k, v in TINY_WORLD.items()]
    with open_dict(cfg):
        cfg.tiny.data.overrides = [f"data.root={tiny_world}", *world, "data.batch_size=2"]
    return cfg


def test_dry_run_writes_every_table_with_the_cpu_as_device(
    tiny_world: Path, tmp_path: Path
) -> None:
    reports = run_gpu(_dry_run(tiny_world), tmp_path, Console(file=io.StringIO(), width=160))
    assert list(reports) == list(TABLES)
    rows = {name: read_rows(tmp_path / f"{name}.csv") for name in TABLES}
    for name, table in rows.items():
        assert table, f"{name}.csv has no rows"
        assert {r["device"] for r in table} == {"cpu"}, name
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["device"] == "cpu" and run["dry_run"] and run["finished"]
    for part, status in run["parts"].items():
        assert status.startswith(f"{part}: done") and "0 failed, 0 skipped" in status, status

    memories = {("text+region", 2), ("vision", 2), ("none", 0)}
    for name, batches in (("train", {2}), ("inference", {1, 2})):
        measured = {(r["attention"], r["memory"], r["l"], r["batch"]) for r in rows[name]}
        assert measured == {
            (a, m, n, b) for a in ("sdpa", "eager") for m, n in memories for b in batches
        }
        assert all(r["clips_per_s"] > 0 and r["peak_mib"] == "" for r in rows[name])
        assert not any(r["compiled"] for r in rows[name])
    compiled = rows["compile"]
    assert [(r["mode"], r["memory"], r["compiled"]) for r in compiled] == [
        ("train", "text+region", True),
        ("inference", "text+region", True),
    ]
    assert all(r["compile_s"] >= 0 for r in compiled)
    ratios = {(r["mode"], r["batch"], r["attention"], r["compiled"]) for r in rows["ratios"]}
    assert ("train", 2, "sdpa", False) in ratios and ("inference", 1, "eager", False) in ratios
    assert all(r["clips_per_s_ratio"] > 0 for r in rows["ratios"])
    assert {r["memory"] for r in rows["numerics"]} == {"text+region", "vision", "none"}
    assert all(r["within"] for r in rows["numerics"])
    assert [r["workers"] for r in rows["data"]] == [0, 1]
    assert all(r["clips"] > 0 and 0 < r["busy_fraction"] <= 1 for r in rows["data"])

    summary = (tmp_path / "summary.md").read_text()
    assert "Device: **cpu** (dry run on the CPU" in summary and ": finished after" in summary
    for name in TABLES:
        assert f"\n## {name}\n" in summary


def test_a_failing_configuration_is_recorded_and_the_others_are_written(
    tiny_world: Path, tmp_path: Path
) -> None:
    cfg = _dry_run(tiny_world, ["parts=[train]", "memories=[no_such_memory]", "attention=[sdpa]"])
    run_gpu(cfg, tmp_path, Console(file=io.StringIO(), width=160))
    assert [(r["memory"], r["l"]) for r in read_rows(tmp_path / "train.csv")] == [("none", 0)]
    summary = (tmp_path / "summary.md").read_text()
    assert "train: done, 1 measured, 1 failed, 0 skipped" in summary
    assert "  - error: sdpa no_such_memory@2: " in summary


def test_the_gpu_config_fits_eight_minutes_and_measures_the_issue_settings() -> None:
    s = gpu_settings(compose_config("bench_gpu"))
    assert s["device"] == "auto" and not s["dry_run"] and s["parts"] == list(PARTS)
    assert sum(s[part]["budget_s"] for part in PARTS) <= s["total_budget_s"] <= 8 * 60 - 45
    assert (s["train"]["batch"], s["dtype"], s["inference"]["batches"]) == (8, "bfloat16", [8, 1])
    assert set(s["memories"]) == {"text+region", "vision"} and sorted(s["lengths"]) == [2, 6, 12]
    assert set(s["attention"]) == {"eager", "sdpa"} and s["compile"]["backend"] == "inductor"
    model = compose_train([*s["model"], "memory=none"])
    assert model.model.backbone.depth == 16 and model.data.num_frames == 16
    data = compose_train([*s["model"], *s["data"]["memory"], *s["data"]["overrides"]]).data
    assert (data.synthetic.frame_size, data.synthetic.fps, data.crop_size) == (360, 30, 224)


def test_a_part_skips_what_its_budget_leaves_out_and_records_errors(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(budget_module.time, "perf_counter", lambda: now[0])

    def takes(seconds: float, fail: bool = False):
        def measure():
            now[0] += seconds
            if fail:
                raise RuntimeError("out of memory")
            return [{"seconds": seconds}]

        return measure

    written, lines = [], []
    items = [("a", takes(10)), ("b", takes(10, fail=True)), ("c", takes(1)), ("d", takes(1))]
    log = run_part(PartLog("train", 25), items, 1e9, lines.append, lambda: written.append(1))
    assert log.done == ["a"] and log.rows == [{"seconds": 10}]
    assert len(log.errors) == 1 and log.errors[0].startswith("b: RuntimeError: out of memory")
    assert log.skipped == ["c", "d"]  # at 20 s, another 10 s would pass the 25 s budget
    assert len(written) == 2 and log.finished and log.seconds == 20
    assert "train c: skipped (budget)" in lines

    now[0] = 0.0  # the run's deadline cuts a part's budget short
    log = run_part(PartLog("inference", 100), items[:1] + items[2:], 15, lines.append, list)
    assert log.done == ["a"] and log.skipped == ["c", "d"]

    def broken():
        yield "a", takes(1)
        raise ValueError("no config")

    log = run_part(PartLog("data", 100), broken(), 1e9, lines.append, list)
    assert log.done == ["a"] and log.errors[0].startswith("data (setting up): ValueError")


def test_ratios_compare_text_region_with_vision_at_each_l_and_with_none() -> None:
    def row(memory: str, length: int, clips: float, peak: float, batch: int = 8) -> dict:
        return {
            "device": "cuda: H200",
            "mode": "train",
            "batch": batch,
            "attention": "sdpa",
            "compiled": False,
            "memory": memory,
            "l": length,
            "clips_per_s": clips,
            "ms_per_step": 1000 * batch / clips,
            "peak_mib": peak,
        }

    rows = [
        row("text+region", 12, 40.0, 1100.0),
        row("vision", 12, 20.0, 2000.0),
        row("none", 0, 50.0, 1000.0),
        row("text+region", 6, 45.0, 1050.0),  # no vision at l=6: no ratio
        row("vision", 2, 10.0, 500.0, batch=1),  # another setting, no text+region
    ]
    (ratio,) = ratio_rows(rows)
    assert (ratio["l"], ratio["batch"]) == (12, 8)
    assert ratio["clips_per_s_ratio"] == 2.0 and ratio["peak_memory_ratio"] == 0.55
    assert ratio["text+region_time_over_none_pct"] == pytest.approx(25.0)
    assert ratio["vision_time_over_none_pct"] == pytest.approx(150.0)
    assert ratio["text+region_memory_over_none_mib"] == 100.0
    assert ratio["vision_memory_over_none_mib"] == 1000.0
    cpu = [{**r, "peak_mib": ""} for r in rows[:3]]  # no peak memory on the CPU
    (ratio,) = ratio_rows(cpu)
    assert ratio["peak_memory_ratio"] == "" and ratio["vision_memory_over_none_mib"] == ""


def test_configurations_put_the_first_l_and_none_first_per_attention_path() -> None:
    assert configurations(["text+region", "vision"], [12, 2], ["sdpa", "eager"]) == [
        Config("text+region", 12, "sdpa"),
        Config("vision", 12, "sdpa"),
        Config("none", 0, "sdpa"),
        Config("text+region", 2, "sdpa"),
        Config("vision", 2, "sdpa"),
        Config("text+region", 12, "eager"),
        Config("vision", 12, "eager"),
        Config("none", 0, "eager"),
        Config("text+region", 2, "eager"),
        Config("vision", 2, "eager"),
    ]
    assert configurations(["vision"], [2], ["sdpa"], with_none=False) == [
        Config("vision", 2, "sdpa")
    ]


def test_cores_needed_names_the_fewest_workers_that_kept_the_device_busy() -> None:
    rows = [
        {"workers": 8, "busy_fraction": 0.97},
        {"workers": 2, "busy_fraction": 0.4},
        {"workers": 4, "busy_fraction": 0.92},
    ]
    assert cores_needed(rows, 0.9).startswith("4 loader worker(s)")
    assert cores_needed(rows, 0.99).startswith("no measured worker count ([2, 4, 8])")


def test_gpu_arguments_turn_dry_run_into_the_override() -> None:
    assert gpu_arguments(["--dry-run", "device=cpu"]) == ["dry_run=true", "device=cpu"]
    assert gpu_arguments(["parts=[numerics]"]) == ["parts=[numerics]"]


def test_the_gpu_command_writes_its_run_folder(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tinymem.bench", "gpu", "--dry-run", "parts=[]"]
    result = subprocess.run(
        [*command, f"paths.log_dir={tmp_path / 'logs'}"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = (tmp_path / "logs" / "bench").glob("gpu-*")
    summary = (run / "summary.md").read_text()
    assert "Device: **cpu** (dry run on the CPU" in summary
    assert "`python -m tinymem.bench gpu dry_run=true parts=[] paths.log_dir=" in summary

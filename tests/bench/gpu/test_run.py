"""The GPU run-book (`python -m tinymem.bench gpu`): its CPU dry run, budgets and derived tables."""

from __future__ import annotations

import io
import json
from pathlib import Path

from omegaconf import open_dict
from rich.console import Console

from helpers.cli_runs import run_module
from helpers.common import TINY_WORLD
from tinymem.bench.gpu import run_gpu
from tinymem.bench.gpu.run import PARTS, TABLES, gpu_settings
from tinymem.bench.models import compose_train
from tinymem.bench.report import read_rows
from tinymem.config import compose_config


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


def test_the_gpu_command_writes_its_run_folder(tmp_path: Path) -> None:
    command = ["tinymem.bench", "gpu", "--dry-run", "parts=[]"]
    result = run_module([*command, f"paths.log_dir={tmp_path / 'logs'}"], tmp_path, 600)
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = (tmp_path / "logs" / "bench").glob("gpu-*")
    summary = (run / "summary.md").read_text()
    assert "Device: **cpu** (dry run on the CPU" in summary
    assert "`python -m tinymem.bench gpu dry_run=true parts=[] paths.log_dir=" in summary

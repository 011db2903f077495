"""The efficiency bench: each report runs on a tiny config and is internally consistent."""

from __future__ import annotations

import io
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from omegaconf import open_dict
from rich.console import Console

from helpers.common import NOTEBOOKS, TINY_WORLD
from helpers.model import BENCH_TEXT_WIDTH
from tinymem.bench import run_bench
from tinymem.bench.report import read_rows
from tinymem.bench.run import README_BEGIN, README_END
from tinymem.config import compose_config

NOTEBOOK = NOTEBOOKS / "bench_figure5.ipynb"


def _tiny_bench(tiny_world: Path, reports: list[str]):
    world = [f"data.synthetic.{k}={v}" for k, v in TINY_WORLD.items()]
    cfg = compose_config(
        "bench",
        [
            f"reports=[{','.join(reports)}]",
            "device=cpu",
            "models=[mvit_tiny]",
            "memories=[vision,text+region]",
            "lengths=[1,2]",
            f"text_width={BENCH_TEXT_WIDTH}",
            "flops.text_tower=null",
            'latency.overrides=["model=mvit_tiny"]',
            "latency.lengths=[2]",
            "latency.train_lengths=[2]",
            "latency.cpu.repeats=1",
            "latency.cpu.train_repeats=1",
            "data.workers=[0,1]",
            "data.batches=2",
            "data.sets=[demo]",
            "data.engine=null",
            'backbone.overrides=["model=mvit_tiny"]',
            "backbone.repeats=1",
        ],
    )
    with open_dict(cfg):
        cfg.data.overrides.demo = [f"data.root={tiny_world}", *world]
    return cfg


def test_run_bench_writes_every_report_and_the_targets(tiny_world: Path, tmp_path: Path) -> None:
    reports = ["tokens", "flops", "latency", "data", "backbone"]
    cfg = _tiny_bench(tiny_world, reports)
    results = run_bench(cfg, tmp_path, Console(file=io.StringIO(), width=160))
    for name in reports:
        assert (tmp_path / f"{name}.csv").stat().st_size > 0
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert len(read_rows(tmp_path / f"{name}.csv")) == len(results[name].rows)
    data = read_rows(tmp_path / "data.csv")
    assert [r["workers"] for r in data] == [0, 1]
    assert all(r["clip"] == "3x4x64x64" and r["clips"] > 0 and r["clips_per_s"] > 0 for r in data)
    latency = read_rows(tmp_path / "latency.csv")
    assert {r["setting"] for r in latency} == {"cpu fp32 batch 1"}
    targets = read_rows(tmp_path / "targets.csv")
    flops_targets, token_target, latency_target = targets[:2], targets[2], targets[3]
    assert [t["measured"] for t in flops_targets] == ["not measured"] * 2  # stated for mvit16
    assert "(eager attention)" in flops_targets[0]["target"]
    assert token_target["target"].startswith("mvit_tiny: vision / text+region")
    assert latency_target["measured"] == "not measured"  # stated for l=12
    summary = (tmp_path / "summary.md").read_text()
    assert "## tokens" in summary and "![flops](flops.png)" in summary


def test_readme_tables_between_the_markers_are_rewritten(tiny_world: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nprose before\n{README_BEGIN}\nold tables\n{README_END}\nafter\n")
    cfg = _tiny_bench(tiny_world, ["tokens"])
    with open_dict(cfg):
        cfg.docs_dir, cfg.readme = str(tmp_path / "docs" / "bench"), str(readme)
    run_bench(cfg, tmp_path / "run", Console(file=io.StringIO(), width=160))
    text = readme.read_text()
    assert text.startswith("# Title\n\nprose before\n") and text.endswith(f"{README_END}\nafter\n")
    assert "old tables" not in text
    inside = text[text.index(README_BEGIN) : text.index(README_END)]
    assert "**Memory tokens per augmented block" in inside and "| mvit_tiny | vision |" in inside
    assert "![tokens](docs/bench/tokens.png)" in inside  # relative to the README
    assert (tmp_path / "docs" / "bench" / "tokens.png").is_file()

    readme.write_text("no markers\n")  # checked before anything is measured
    with pytest.raises(ValueError, match="README.md: expected a line"):
        run_bench(cfg, tmp_path / "again", Console(file=io.StringIO()))
    assert not (tmp_path / "again" / "tokens.csv").exists()


@pytest.mark.slow
def test_bench_notebook_draws_figure_5_from_a_run(
    tiny_world: Path, tmp_path: Path, monkeypatch
) -> None:
    cfg = _tiny_bench(tiny_world, ["tokens", "flops", "latency"])
    run = tmp_path / "run"
    run_bench(cfg, run, Console(file=io.StringIO()))
    monkeypatch.setenv("TINYMEM_BENCH_RUN", str(run))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "figure5.png").read_bytes()[:4] == b"\x89PNG"

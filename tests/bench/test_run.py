"""The efficiency bench: each report runs on a tiny config and is internally consistent."""

from __future__ import annotations

import io
import math
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from omegaconf import open_dict
from rich.console import Console

from helpers.common import NOTEBOOKS, TINY_WORLD
from tinymem.bench import run_bench
from tinymem.bench.__main__ import shorthand
from tinymem.bench.data_pipeline import LOADER_PATHS, data_report
from tinymem.bench.flops import count_flops, flops_rows
from tinymem.bench.latency import (
    NO_MEMORY,
    Setting,
    build_stream,
    fill_memory,
    latency_settings,
    measure_setting,
)
from tinymem.bench.models import build_detector
from tinymem.bench.report import Report, read_rows
from tinymem.bench.run import README_BEGIN, README_END
from tinymem.bench.targets import targets_report
from tinymem.bench.tokens import tokens_rows
from tinymem.config import compose_config
from tinymem.models.mvit import conv_output_size

TINY = ["model=mvit_tiny"]  # 4 blocks, memory on blocks 0 and 2; clips of 4 frames at 64 px
FRAMES = 4
TEXT_WIDTH = 32
N_REGION = 16
VISION_KERNEL, VISION_STRIDE = (7, 3, 3), (4, 2, 2)
NOTEBOOK = NOTEBOOKS / "bench_figure5.ipynb"


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: these tests check consistency, and 2 threads crawl on a busy 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _conv1d(tokens: int) -> int:  # P_k / P_v: kernel 3, stride 2, padding 1
    return conv_output_size(tokens, 3, 2, 1)


def _vision_tokens(kv_grid: tuple[int, int, int]) -> tuple[int, int]:
    """MeMViT entry before/after the (7,3,3)/(4,2,2) compression, class token included."""
    axes = zip(kv_grid, VISION_KERNEL, VISION_STRIDE, strict=True)
    out = [conv_output_size(n, k, s, k // 2) for n, k, s in axes]
    return 1 + math.prod(kv_grid), 1 + math.prod(out)


def test_token_counts_follow_the_plan_and_the_compression_formulas() -> None:
    rows = tokens_rows(
        {"tiny": TINY}, ["vision", "text", "region", "text+region"], [1, 3], TEXT_WIDTH
    )
    by = {(r["memory"], r["l"]): r for r in rows}
    net = build_detector(TINY, "vision", 1, TEXT_WIDTH).model.backbone
    vision = {b: _vision_tokens(net.kv_grid(b)) for b in (0, 2)}
    for length in (1, 3):
        expected = {
            "vision": {b: (length * n, length * m) for b, (n, m) in vision.items()},
            "text": {b: (length * FRAMES, length * _conv1d(FRAMES)) for b in (0, 2)},
            "region": {b: (length * N_REGION, length * _conv1d(N_REGION)) for b in (0, 2)},
            "text+region": {
                0: (length * FRAMES, length * _conv1d(FRAMES)),
                2: (length * N_REGION, length * _conv1d(N_REGION)),
            },
        }
        for kind, blocks in expected.items():
            row = by[(kind, length)]
            per_block = " ".join(f"{b}:{n}/{m}" for b, (n, m) in blocks.items())
            assert row["per_block"] == per_block, (kind, length)
            assert row["before"] == sum(n for n, _ in blocks.values()) / len(blocks)
            assert row["after"] == sum(m for _, m in blocks.values()) / len(blocks)
        ours = by[("text+region", length)]
        assert ours["plan"] == "TR" and ours["blocks"] == "0 2"
        assert ours["vision_over_this"] == by[("vision", length)]["after"] / ours["after"]


@pytest.mark.parametrize(
    ("kind", "path"), [("vision", "eager"), ("text+region", "eager"), ("text+region", "sdpa")]
)
def test_flops_on_meta_tensors_equal_real_tensors(kind: str, path: str) -> None:
    overrides = [*TINY, f"model.backbone.attention={path}"]
    torch.manual_seed(0)
    real = count_flops(build_detector(overrides, kind, 2, TEXT_WIDTH, device="cpu"))
    meta = count_flops(build_detector(overrides, kind, 2, TEXT_WIDTH, device="meta"))
    assert meta == real
    assert 0 < real["readout"] < real["attention"] < real["total"]


def test_flops_without_memory_equal_no_memory_and_grow_with_l() -> None:
    paths = ["eager", "sdpa"]
    rows = flops_rows({"tiny": TINY}, ["vision", "text+region"], [1, 2, 3], TEXT_WIDTH, paths)
    for path in paths:
        none = next(r for r in rows if r["memory"] == NO_MEMORY and r["path"] == path)
        for kind in ("vision", "text+region"):
            mine = sorted(
                (r for r in rows if r["memory"] == kind and r["path"] == path), key=lambda r: r["l"]
            )
            assert [r["l"] for r in mine] == [0, 1, 2, 3]
            assert mine[0]["total_gflops"] == none["total_gflops"]  # l=0: no memory op runs
            assert mine[0]["readout_gflops"] == 0 and mine[0]["total_increase_pct"] == 0
            totals = [r["total_gflops"] for r in mine]
            assert all(a < b for a, b in zip(totals, totals[1:], strict=False)), totals
            for row in mine:  # memory adds FLOPs only in the attention blocks and their readouts
                added_total = row["total_gflops"] - mine[0]["total_gflops"]
                added_attention = row["attention_gflops"] - mine[0]["attention_gflops"]
                assert added_total == pytest.approx(added_attention, rel=1e-9, abs=1e-12)


def test_latency_in_bf16_autocast_batch_2_the_gpu_settings_code() -> None:
    setting = Setting(torch.device("cpu"), 2, "bfloat16", False, 0, 1, 1)
    rows, tower_ms = measure_setting(TINY, [NO_MEMORY, "text+region"], [2], [2], setting, seed=0)
    assert [(r["mode"], r["memory"], r["l"]) for r in rows] == [
        ("inference", "none", 0),
        ("inference", "text+region", 2),
        ("training", "none", 0),
        ("training", "text+region", 2),
    ]
    assert all(r["ms_per_clip"] > 0 and r["clips_per_s"] > 0 and r["batch"] == 2 for r in rows)
    assert all(r["ratio_to_none"] == 1.0 for r in rows if r["memory"] == NO_MEMORY)
    assert all(r["ratio_to_none"] > 0 for r in rows)
    assert tower_ms is not None and tower_ms > 0
    assert setting.name == "cpu bfloat16 batch 2"


def test_memory_is_full_before_and_after_a_streamed_step() -> None:
    setting = Setting(torch.device("cpu"), 2, None, False, 0, 1, 1)
    stream = build_stream(TINY, "vision", 3, setting, seed=0)
    fill_memory(stream, "predict")
    memory = stream.module.memories["predict"]
    with torch.no_grad():
        reads = memory.read()
        assert all(bool(read.mask.all()) for read in reads.values())  # l valid entries each
        stream.module.stream_step(stream.batch, "predict")
    assert all(len(cache) == cache.capacity == 3 for cache in memory.caches.values())
    assert all(bool(read.mask.all()) for read in memory.read().values())


def test_shorthand_turns_report_names_into_an_override() -> None:
    assert shorthand(["backbone", "device=cpu"]) == ["reports=[backbone]", "device=cpu"]
    assert shorthand(["tokens", "flops"]) == ["reports=[tokens,flops]"]
    assert shorthand(["models=[mvit16]"]) == ["models=[mvit16]"]


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
            f"text_width={TEXT_WIDTH}",
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


def test_latency_settings_follow_the_device_and_note_a_missing_gpu(monkeypatch) -> None:
    cfg = compose_config("bench").latency
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    settings, notes = latency_settings(cfg, "auto")
    assert [s.name for s in settings] == ["cpu fp32 batch 1"]
    assert notes and notes[0].startswith("No CUDA device: the GPU rows (bfloat16 autocast, batch 8")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        latency_settings(cfg, "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    settings, notes = latency_settings(cfg, "cuda")
    assert [s.name for s in settings] == [
        "cuda bfloat16 batch 8",
        "cuda bfloat16 batch 8, compiled",
    ]
    assert notes == []


def test_targets_state_the_measured_values_and_whether_each_is_met() -> None:
    def flops(kind: str, length: int, gflops: float) -> dict:
        return {
            "model": "mvit16",
            "path": "eager",
            "memory": kind,
            "l": length,
            "total_gflops": gflops,
        }

    def latency(kind: str, ratio: float) -> dict:
        setting = "cpu fp32 batch 1"
        return {
            "setting": setting,
            "mode": "inference",
            "memory": kind,
            "l": 12,
            "ratio_to_none": ratio,
        }

    reports = {
        "flops": Report(
            "flops",
            [
                flops("text+region", 2, 100),
                flops("text+region", 12, 104.0),
                flops("vision", 2, 100),
                flops("vision", 12, 112.0),
            ],
            [],
        ),
        "latency": Report("latency", [latency("text+region", 1.12), latency("vision", 1.3)], []),
    }
    lines = targets_report(reports).grids[0].rows
    assert lines[0][1:] == ["text+region +4.00%, vision +12.00%", "yes"]
    assert lines[1][1:] == ["text+region x1.120, vision x1.300", "NO"]
    reports["flops"].rows[3]["total_gflops"] = 106.0  # vision grows less than twice as much
    assert targets_report(reports).grids[0].rows[0][2] == "NO"


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


def test_data_engine_study_reports_decoders_stages_loaders_and_targets(
    tmp_path: Path,
) -> None:
    """The engine study on tiny videos: every decoder, stage, loader path and target is there."""
    engine = {
        "root": str(tmp_path / "engine"),
        "heights": [64],
        "gops": [250],
        "seconds": 6,
        "num_frames": 4,
        "sample_rate": 2,
        "crop_size": 32,
        "rounds": 1,
        "loader_height": 64,
        "loader_gop": 250,
        "loader_videos": 2,
        "batch_size": 2,
        "loader_batches": 1,
        "loader_rounds": 1,
    }
    report = data_report({}, [0, 2], 1, engine)
    decoders = {(r["video"], r["contender"]) for r in report.rows if r.get("study") == "decode"}
    assert {c for _, c in decoders} == {
        "decode-once", "per-clip", "engine", "jpeg decode_jpeg", "jpeg reduced",
    }  # fmt: skip
    loaders = {(r["data"], r["workers"]) for r in report.rows if "workers" in r}
    assert loaders == {(name, w) for name in LOADER_PATHS for w in (0, 2)}
    assert all(r["clip"] == "3x4x32x32" for r in report.rows if "workers" in r)
    targets = report.grids[-1]
    assert len(targets.rows) == 2  # the 1 -> 2 workers target needs a run with 1 worker
    assert all(row[2] in ("True", "False") for row in targets.rows)

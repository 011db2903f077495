"""The data-engine study: every decoder, stage, loader path and target."""

from __future__ import annotations

from pathlib import Path

from tinymem.bench.data_pipeline import LOADER_PATHS, data_report


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
    report = data_report({}, [0, 1, 2], 1, engine)
    decoders = {(r["video"], r["contender"]) for r in report.rows if r.get("study") == "decode"}
    assert {c for _, c in decoders} == {
        "decode-once", "per-clip", "engine", "jpeg decode_jpeg", "jpeg reduced",
    }  # fmt: skip
    loaders = {(r["data"], r["workers"]) for r in report.rows if "workers" in r}
    assert loaders == {(name, w) for name in LOADER_PATHS for w in (0, 1, 2)}
    assert all(r["clip"] == "3x4x32x32" for r in report.rows if "workers" in r)
    engine_rows = [r for r in report.rows if r.get("data") == "engine"]
    assert all(r["device"] == "cpu" and r["device_ms_per_clip"] > 0 for r in engine_rows)
    # without a GPU the device transform is CPU work: counting it makes each clip dearer
    assert all(r["clips_per_cpu_s_with_device"] < r["clips_per_cpu_s"] for r in engine_rows)
    device_grid = next(g for g in report.grids if g.title.startswith("Training loader with"))
    assert [row[0] for row in device_grid.rows] == list(LOADER_PATHS)
    # the machine's own scaling: 1 and 2 processes decoding the loader's videos
    scaling = {r["processes"]: r for r in report.rows if r.get("study") == "scaling"}
    assert scaling.keys() == {1, 2} and all(r["clips_per_s"] > 0 for r in scaling.values())
    targets = report.grids[-1]
    # decode, loader host side, loader with the CPU's device transform (no GPU here), workers
    assert len(targets.rows) == 4
    assert all(row[2] in ("True", "False") for row in targets.rows)
    assert "(machine " in targets.rows[-1][1]

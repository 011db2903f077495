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

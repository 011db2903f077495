"""``python -m tinymem.tools.prepare_ava`` on a tiny synthetic video: cut, 30 fps JPEGs, lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinymem.data.ava.frames import frame_file, read_frame_list
from tinymem.data.video import probe_video, read_frames, write_video
from tinymem.tools.prepare_ava import main

SOURCE_FPS = 10
SECONDS = 4
STEP = 6  # source frame j has grey level STEP * j


@pytest.fixture
def raw_videos(tmp_path: Path) -> Path:
    """Video vidA: 4 s at 10 fps, frame j has grey level 6 j."""
    frames = np.zeros((SECONDS * SOURCE_FPS, 16, 24, 3), np.uint8)  # [T, H, W, 3]
    for j in range(len(frames)):
        frames[j] = STEP * j  # grey: JPEG keeps luminance well
    raw = tmp_path / "raw"
    raw.mkdir()
    write_video(raw / "vidA.mp4", frames, SOURCE_FPS)
    return raw


def source_frame(path: Path) -> int:
    """Source frame index shown by an extracted JPEG (from its grey level)."""
    with Image.open(path) as image:
        return round(float(np.asarray(image, dtype=np.float32).mean()) / STEP)


def run(raw: Path, out: Path, *extra: str) -> int:
    """Run the tool on seconds 1..3 of the raw videos at 30 fps."""
    return main([f"videos={raw}", f"out={out}", "start_sec=1", "end_sec=3", "fps=30", *extra])


def test_cuts_resamples_and_lists_frames(raw_videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "ava"
    assert run(raw_videos, out, "cut_videos=true") == 0
    assert read_frame_list(out / "frame_lists" / "all.csv") == {"vidA": 60}  # 2 s x 30 fps
    frames = out / "frames"
    assert sorted(p.name for p in (frames / "vidA").iterdir())[:2] == [
        "vidA_000001.jpg",
        "vidA_000002.jpg",
    ]
    # output frame k (second 1 + k / 30) shows source frame j (second j / 10) with 3j - 30 <= k
    shown = [source_frame(frames / frame_file("vidA", k)) for k in range(60)]
    assert shown == [(k + 30) // 3 for k in range(60)]
    cut = out / "videos_15min" / "vidA.mp4"
    assert probe_video(cut).num_frames == 60 and probe_video(cut).fps == 30
    grey = read_frames(cut, [0, 31, 59]).float().mean(dim=(1, 2, 3)) / STEP
    assert [round(float(v)) for v in grey] == [10, 20, 29]


def test_splits_resume_and_missing_videos(raw_videos: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ava"
    split = tmp_path / "ava_val_v2.2.csv"
    split.write_text("vidA,0902,0.1,0.1,0.5,0.5,1,0\nvidZ,0902,0.1,0.1,0.5,0.5,1,0\n")
    assert run(raw_videos, out, f"splits=val:{split}") == 1  # vidZ has no video file
    assert "videos without a file: 1" in capsys.readouterr().out
    assert read_frame_list(out / "frame_lists" / "val.csv") == {"vidA": 60}
    first = out / "frames" / frame_file("vidA", 0)
    stamp = first.stat().st_mtime_ns
    assert run(raw_videos, out, f"splits=val:{split}") == 1  # finished videos are reused
    assert first.stat().st_mtime_ns == stamp
    assert run(raw_videos, out, f"splits=val:{split}", "overwrite=true") == 1
    assert first.stat().st_mtime_ns != stamp


def test_undecodable_video_is_reported(raw_videos: Path, tmp_path: Path, capsys) -> None:
    (raw_videos / "broken.mp4").write_bytes(b"not a video" * 100)
    assert run(raw_videos, tmp_path / "ava") == 1
    captured = capsys.readouterr()
    assert "videos that failed: 1" in captured.out and "videos extracted: 1" in captured.out
    assert read_frame_list(tmp_path / "ava" / "frame_lists" / "all.csv") == {"vidA": 60}


def test_bad_arguments_exit_2(tmp_path: Path, capsys) -> None:
    assert main([f"videos={tmp_path}", f"out={tmp_path}", "fps=0"]) == 2
    assert "fps" in capsys.readouterr().err

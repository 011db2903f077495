"""Breakfast clips: segment clips clamped at the video edges, activity clips over 256 frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.data import BlankSource
from tinymem.data.breakfast.dataset import (
    BreakfastActivityClips,
    BreakfastSegments,
    video_frame_samples,
)
from tinymem.data.breakfast.formats import (
    ACTIVITIES,
    BreakfastAnnotation,
    Segment,
    parse_video_name,
)
from tinymem.data.clip_transforms import build_clip_transform
from tinymem.errors import DataFormatError
from tinymem.memory.captions import CaptionStore


def _options(tmp_path: Path) -> dict:
    return dict(
        captions=CaptionStore(tmp_path / "none"),
        num_frames=4,
        crop_size=8,
        transform=build_clip_transform(False, 8, (8, 8), 8),
    )


def test_segment_clips_are_clamped_at_the_video_edges(tmp_path: Path) -> None:
    video = parse_video_name("P03_cam01_P03_cereals")
    segments = (Segment(0, 3, 0, 1), Segment(4, 89, 1, 2), Segment(90, 99, 0, 3))
    annotation = BreakfastAnnotation(video, segments, tmp_path / "gt.txt")
    dataset = BreakfastSegments(
        [annotation], {video.name: BlankSource(95)}, sample_rate=4, **_options(tmp_path)
    )
    assert dataset.frame_indices(0) == [0, 0, 1, 5]  # centre 1: range(-7, 9, 4) clamped at 0
    assert dataset.frame_indices(1) == [38, 42, 46, 50]
    assert dataset.frame_indices(2) == [86, 90, 94, 94]  # centre 94: 98 clamped to 94
    assert [dataset[i]["label"] for i in range(3)] == [0, 1, 0]
    assert [dataset[i]["clip_index"] for i in range(3)] == [0, 1, 2]
    late = BreakfastAnnotation(video, (Segment(0, 99, 0, 1), Segment(100, 120, 1, 7)), Path("gt"))
    dataset = BreakfastSegments(
        [late], {video.name: BlankSource(95)}, sample_rate=4, **_options(tmp_path)
    )
    with pytest.raises(DataFormatError, match=r"gt:7: segment starts at frame 101"):
        dataset[1]


def test_activity_clips_cover_256_frames_in_order(tmp_path: Path) -> None:
    assert video_frame_samples(5, 3) == [0, 2, 4]
    assert video_frame_samples(2, 4) == [0, 0, 1, 1]
    videos = [parse_video_name("P03_cam01_P03_juice"), parse_video_name("P16_cam01_P16_tea")]
    sources = {videos[0].name: BlankSource(2000), videos[1].name: BlankSource(100)}
    options = _options(tmp_path) | {"num_frames": 16}
    dataset = BreakfastActivityClips(videos, sources, frames_per_video=256, **options)
    assert len(dataset) == 32 and dataset.videos == [list(range(16)), list(range(16, 32))]
    frames = [f for i in range(16) for f in dataset.frame_indices(i)]
    assert len(frames) == 256 and frames[0] == 0 and frames[-1] == 1999
    assert frames == sorted(frames)
    items = [dataset[i] for i in range(16)]
    assert [item["is_last"] for item in items] == [False] * 15 + [True]
    assert {item["label"] for item in items} == {ACTIVITIES.index("juice")}
    assert [item["clip_index"] for item in items] == list(range(16))
    assert dataset[16]["label"] == ACTIVITIES.index("tea") and dataset[16]["is_first"]
    with pytest.raises(ValueError, match="data.frames_per_video"):
        BreakfastActivityClips(videos, sources, frames_per_video=250, **options)

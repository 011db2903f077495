"""Epic-Kitchens-100 segments: clip indices at the video edges, timestamps, stream order."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.data import BlankSource, epic_csv
from tinymem.data.clip_transforms import build_clip_transform
from tinymem.data.epic_kitchens.dataset import EpicKitchensSegments
from tinymem.data.epic_kitchens.formats import read_epic_annotations
from tinymem.data.frame_sources import VideoFileSource
from tinymem.data.streaming import StreamingBatchSampler
from tinymem.data.video import VideoWriter
from tinymem.errors import DataFormatError
from tinymem.memory.captions import CaptionStore


def _dataset(tmp_path: Path, rows: list[str], sources, **kwargs) -> EpicKitchensSegments:
    path = epic_csv(tmp_path, rows)
    transform = build_clip_transform(False, 8, (8, 8), 8)
    return EpicKitchensSegments(
        read_epic_annotations(path),
        annotation_file=path,
        sources=sources,
        captions=CaptionStore(tmp_path / "no_captions"),
        num_frames=4,
        sample_rate=3,
        crop_size=8,
        transform=transform,
        **kwargs,
    )


def test_clip_is_centred_and_clamped_at_the_video_edges(tmp_path: Path) -> None:
    rows = [
        "0,a,P01,P01_01,00:00:00.00,00:00:00.00,00:00:00.10,0,2,x,take,0,cup,8,['cup'],[8]",
        "1,b,P01,P01_01,00:00:00.00,00:00:01.00,00:00:01.50,50,70,x,take,0,cup,8,['cup'],[8]",
        "2,c,P01,P01_01,00:00:00.00,00:00:01.80,00:00:02.00,95,99,x,take,0,cup,8,['cup'],[8]",
    ]
    dataset = _dataset(tmp_path, rows, {"P01_01": BlankSource(100)})
    assert dataset.frame_indices(0) == [0, 0, 1, 4]  # centre 1: range(-5, 7, 3) clamped at 0
    assert dataset.frame_indices(1) == [54, 57, 60, 63]  # centre 60, L = 12
    assert dataset.frame_indices(2) == [91, 94, 97, 99]  # centre 97: 100 clamped to 99


def _counter_video(path: Path, fps: Fraction, seconds: float) -> VideoFileSource:
    """A lossless video whose frame ``i`` has grey level ``i % 256`` (its index, readable back)."""
    count = int(seconds * fps)
    with VideoWriter(path, fps, 16, 16) as writer:
        for i in range(count):
            writer.write(np.full((16, 16, 3), i % 256, np.uint8))
    return VideoFileSource(path)


@pytest.mark.parametrize(
    ("video_id", "fps"),
    [("P09_07", Fraction(30000, 1001)), ("P18_09", Fraction(90))],
    ids=["29.97fps", "90fps"],
)
def test_video_files_place_segments_at_their_timestamps(
    tmp_path: Path, video_id: str, fps: Fraction
) -> None:
    # as in the release: frames numbered at 60 fps whatever the video's rate (3.00 s -> 180)
    rows = [
        f"0,{video_id}_1,{video_id[:3]},{video_id},,00:00:02.50,00:00:03.50,150,210,x,take,0,"
        "cup,8,['cup'],[8]"
    ]
    source = _counter_video(tmp_path / f"{video_id}.mp4", fps, 4.0)
    assert source.fps == pytest.approx(float(fps))
    dataset = _dataset(tmp_path, rows, {video_id: source})
    indices = dataset.frame_indices(0)
    centre = round(3.0 * float(fps))  # the segment's middle, 3.0 s, at the file's rate
    assert indices[len(indices) // 2] == centre < source.num_frames
    frames = source.read(indices)  # [T, 3, H, W]: the decoded grey level is the frame index
    levels = frames.float().mean(dim=(1, 2, 3))
    assert torch.allclose(levels, torch.tensor([i % 256 for i in indices]).float(), atol=1.0)
    # frame folders keep the annotated 60 fps numbers: centre (150 + 210) // 2 = 180
    folder = _dataset(tmp_path, rows, {video_id: BlankSource(400)})
    assert folder.frame_indices(0)[2] == 180


def test_segment_past_the_video_end_names_the_row(tmp_path: Path) -> None:
    rows = ["1,b,P01,P01_01,00:00:00.00,00:00:01.00,00:00:01.50,120,130,x,take,0,cup,8,['cup'],[8]"]
    dataset = _dataset(tmp_path, rows, {"P01_01": BlankSource(100)})
    with pytest.raises(
        DataFormatError,
        match=r"EPIC_100_train\.csv:2: segment b starts at frame 120, but .* 100 frames",
    ):
        dataset[0]


def test_segments_stream_in_temporal_order_per_video(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for video in ("P01_01", "P01_02", "P02_01"):
        starts = rng.permutation(np.arange(0, 400, 20))[: int(rng.integers(3, 9))]
        for n, start in enumerate(starts):
            rows.append(
                f"0,{video}_{n},{video[:3]},{video},00:00:00.00,00:00:00.00,00:00:00.10,"
                f"{start},{start + 10},x,take,0,cup,8,['cup'],[8]"
            )
    rng.shuffle(rows)
    sources = {v: BlankSource(500) for v in ("P01_01", "P01_02", "P02_01")}
    dataset = _dataset(tmp_path, rows, sources)
    sampler = StreamingBatchSampler(dataset.videos, 2, shuffle=True, seed=3)
    last: dict[int, tuple[str, int]] = {}
    seen = 0
    for batch in sampler:
        for row, index in enumerate(batch):
            if index < 0:
                continue
            seen += 1
            segment = dataset.segments[index]
            previous = last.get(row)
            if previous is not None and previous[0] == segment.video_id:
                assert segment.start_frame > previous[1]  # later in the same video
                assert dataset.clip_index[index] > 0
            else:
                assert dataset.clip_index[index] == 0  # a row starts each video at its first
            last[row] = (segment.video_id, segment.start_frame)
    assert seen == len(rows)

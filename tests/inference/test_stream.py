"""Clips streamed from a video: the datamodule's frames and transform, the training frame rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from helpers.common import TINY_WORLD
from tinymem.data.ava.dataset import AvaKeyframeClips, build_transform
from tinymem.data.ava.formats import read_label_map, read_proposals
from tinymem.data.ava.synthetic import SyntheticSpec
from tinymem.data.frame_sources import VideoFileSource
from tinymem.data.video import read_frames, write_video
from tinymem.inference.detector import PersonBoxes
from tinymem.inference.predictor import build_batch
from tinymem.inference.stream import VideoSeconds
from tinymem.memory.captions import CaptionStore

SPEC = SyntheticSpec(**TINY_WORLD)
FPS = SPEC.fps
VIDEO = "syn_val_000"


def test_stream_clips_match_the_datamodule_frames_and_transform(tiny_world: Path) -> None:
    """Each second's clip decodes the datamodule's frames, and the batch equals its eval item."""
    path = tiny_world / "videos" / f"{VIDEO}.mp4"
    seconds = list(VideoSeconds(path, num_frames=4, sample_rate=2))
    assert [c.second for c in seconds] == list(range(SPEC.num_frames // FPS))
    annotations = tiny_world / "annotations"
    proposals, _ = read_proposals(annotations / "val_proposals.csv")
    proposals = {k: v for k, v in proposals.items() if k[0] == VIDEO}
    class_ids = sorted(read_label_map(annotations / "action_list.pbtxt"))
    dataset = AvaKeyframeClips(
        proposals,
        {VIDEO: VideoFileSource(path)},
        CaptionStore(tiny_world / "captions"),
        class_ids,
        num_frames=4,
        sample_rate=2,
        crop_size=64,
        video_start_sec=SPEC.video_start_sec,
        train=False,
        boxes=proposals,
    )
    transform = build_transform(train=False, crop_size=64)
    for index, (_, timestamp) in enumerate(dataset.items):
        clip = seconds[timestamp - SPEC.video_start_sec]
        assert torch.equal(clip.frames, read_frames(path, clip.frame_ids))
        item = dataset[index]
        entries = sorted(proposals[(VIDEO, timestamp)], key=lambda e: -e.score)
        persons = PersonBoxes(
            torch.tensor([e.box for e in entries]), torch.tensor([e.score for e in entries])
        )
        captions = dataset.captions.captions(VIDEO, clip.frame_ids)
        batch = build_batch(transform, clip, persons, captions, 5, 0, VIDEO, timestamp, False)
        assert torch.equal(batch["video"][0], item["video"])
        torch.testing.assert_close(batch["boxes"][0], item["boxes"])
        assert batch["captions"][0] == item["captions"]


def test_stream_resamples_to_the_training_frame_rate(tmp_path: Path) -> None:
    """A 16 fps video read at fps=8 samples every other frame, as an 8 fps video would be."""
    frames = np.zeros((48, 32, 32, 3), dtype=np.uint8)
    frames += (np.arange(48, dtype=np.uint8) * 5)[:, None, None, None]  # grey level = 5 x frame
    path = tmp_path / "fast.mp4"
    write_video(path, frames, fps=16)
    clips = list(VideoSeconds(path, num_frames=4, sample_rate=2, fps=8))
    assert [c.second for c in clips] == [0, 1, 2]
    # second 1: 8 fps frames 4, 6, 8, 10 -> 16 fps frames 8, 12, 16, 20
    assert clips[1].frame_ids == [8, 12, 16, 20]
    grey = clips[1].frames.float().mean(dim=(1, 2, 3))
    torch.testing.assert_close(grey, torch.tensor([40.0, 60.0, 80.0, 100.0]), atol=2, rtol=0)

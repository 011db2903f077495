"""Plain data helpers: a blank frame source, datamodule options, small annotation files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tinymem.data.ava.datamodule import AvaDataModule
from tinymem.data.ava.dataset import AvaKeyframeClips
from tinymem.data.ava.formats import read_annotations, read_label_map
from tinymem.data.frame_sources import FrameSource, VideoFileSource
from tinymem.memory.captions import CaptionStore

# Tiny synthetic EK-100 and Breakfast worlds (see `epic_world` and `breakfast_world` fixtures).
TINY_EPIC = dict(
    seed=0,
    num_train_videos=3,
    num_val_videos=2,
    episodes_per_video=2,
    segment_frames=[4, 6],
    gap_frames=[0, 2],
    frame_size=32,
)
TINY_BREAKFAST = dict(
    seed=0,
    activities=["cereals", "coffee"],
    segment_frames=[4, 6],
    sil_frames=[2, 4],
    frame_size=32,
)

# The Epic-Kitchens-100 annotation CSV header, as released.
EPIC_HEADER = (
    "uid,narration_id,participant_id,video_id,narration_timestamp,start_timestamp,"
    "stop_timestamp,start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,"
    "all_nouns,all_noun_classes"
)


class BlankSource(FrameSource):
    """A video of ``count`` black frames that records what was read."""

    def __init__(self, count: int, fps: float | None = None) -> None:
        self.count, self._fps, self.reads = count, fps, []

    @property
    def num_frames(self) -> int:
        return self.count

    @property
    def fps(self) -> float | None:
        return self._fps

    def exists(self) -> bool:
        return True

    def read(self, indices, upcoming=(), short_side=None):
        self.reads.append(list(indices))
        return torch.zeros(len(indices), 3, 8, 8, dtype=torch.uint8)


def epic_csv(tmp_path: Path, rows: list[str], header: str = EPIC_HEADER) -> Path:
    """An EK-100 annotation CSV of `rows` under the header, at tmp_path/EPIC_100_train.csv."""
    path = tmp_path / "EPIC_100_train.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def stream_options(root: Path, **kwargs: Any) -> dict[str, Any]:
    """The options every streaming datamodule of the tests shares: 4 frames x 2, batches of 2."""
    options = dict(
        root=str(root),
        caption_dir="captions",
        num_frames=4,
        sample_rate=2,
        batch_size=2,
        eval_batch_size=2,
    )
    options.update(kwargs)
    return options


def ava_datamodule(root: Path, **kwargs: Any) -> AvaDataModule:
    """An AvaDataModule on the synthetic world's layout under root: 4 frames x 2 at 64 px, B=3."""
    options = stream_options(
        root,
        train_csv="annotations/train.csv",
        val_csv="annotations/val.csv",
        label_map="annotations/action_list.pbtxt",
        val_proposals="annotations/val_proposals.csv",
        val_excluded="annotations/val_excluded_timestamps.csv",
        video_dir="videos",
        crop_size=64,
        video_start_sec=900,
        batch_size=3,
    )
    options.update(kwargs)
    return AvaDataModule(**options)


def ava_clips(world: Path, train: bool, device_transform: bool, **kwargs: Any) -> AvaKeyframeClips:
    """The tiny world's training keyframes as a dataset (stream decoding)."""
    class_ids = sorted(read_label_map(world / "annotations/action_list.pbtxt"))
    groundtruth, _ = read_annotations(world / "annotations/train.csv", set(class_ids))
    videos = {video for video, _ in groundtruth}
    sources = {v: VideoFileSource(world / "videos" / f"{v}.mp4") for v in videos}
    return AvaKeyframeClips(
        groundtruth,
        sources,
        CaptionStore(world / "captions"),
        class_ids,
        num_frames=4,
        sample_rate=2,
        crop_size=kwargs.pop("crop_size", 64),
        video_start_sec=900,
        train=train,
        device_transform=device_transform,
        **kwargs,
    )

"""Breakfast clip datasets of the two streamed tasks.

Tasks (``tinymem.data.breakfast.datamodule.BreakfastDataModule``):

- ``subaction`` (task A): one clip per annotated segment, in time order; ``label`` is the
  sub-action id of mapping.txt (48 classes, SIL included).
- ``activity`` (task B, long-term activity detection): ``frames_per_video`` (256) frames evenly
  spaced over the whole video, cut into consecutive clips of ``num_frames`` (16), fed in order;
  ``label`` is the activity id (index in ``ACTIVITIES``, 10 classes) on every clip and, when
  the video's annotation is read, ``actions`` the multi-hot [48] set of the sub-actions anywhere
  in the video (the paper's table 12 target: all action categories of the video). The clips of
  one video share ``video_id`` / ``video_name`` and run ``clip_index`` 0 .. num_clips - 1;
  ``is_last`` marks the final clip, whose prediction is the memory model's video prediction
  (the no-memory baseline averages the clip predictions of the same ``video_id``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from tinymem.data.breakfast.formats import BreakfastAnnotation, BreakfastVideo
from tinymem.data.clip_dataset import IGNORE_LABEL, StreamedClipDataset
from tinymem.data.frame_sources import FrameSource
from tinymem.data.video import clip_frame_indices
from tinymem.errors import data_error


class BreakfastSegments(StreamedClipDataset):
    """Task A: one clip per annotated segment, streamed video by video in time order.

    The clip is ``num_frames`` frames ``sample_rate`` apart centred on the segment's middle
    frame, clamped to the video. ``label`` is the sub-action id. ``clip_options``: those of
    :class:`~tinymem.data.clip_dataset.StreamedClipDataset` (captions, num_frames, ...).
    """

    label_defaults = {"label": IGNORE_LABEL}

    def __init__(
        self,
        annotations: Sequence[BreakfastAnnotation],
        sources: Mapping[str, FrameSource],
        sample_rate: int,
        **clip_options: Any,
    ) -> None:
        ordered = sorted(annotations, key=lambda a: a.video.name)
        self.annotations = ordered
        self.items = [(a, s) for a in ordered for s in sorted(a.segments, key=lambda s: s.start)]
        self.sample_rate = sample_rate
        position = {a.video.name: i for i, a in enumerate(ordered)}
        super().__init__(
            video_names=[a.video.name for a in ordered],
            item_videos=[position[a.video.name] for a, _ in self.items],
            sources=sources,
            **clip_options,
        )

    def frame_indices(self, index: int) -> list[int]:
        """Clip frames centred in the segment, clamped to the video."""
        annotation, segment = self.items[index]
        source = self.sources[annotation.video.name]
        total = source.num_frames
        if segment.start >= total:
            raise data_error(
                annotation.path,
                f"segment starts at frame {segment.start + 1} (1-based), but {source} has only "
                f"{total} frames",
                segment.line,
            )
        center = (segment.start + segment.end) // 2
        return clip_frame_indices(center, self.num_frames, self.sample_rate, total)

    def labels(self, index: int) -> dict[str, Any]:
        """The sub-action id."""
        return {"label": self.items[index][1].label}


def video_frame_samples(total_frames: int, count: int) -> list[int]:
    """``count`` frames evenly spaced over [0, total_frames - 1] (rounded, repeats allowed)."""
    if total_frames < 1 or count < 1:
        raise ValueError(f"expected total_frames and count >= 1, got {total_frames}, {count}")
    return torch.linspace(0, total_frames - 1, count).round().long().tolist()


class BreakfastActivityClips(StreamedClipDataset):
    """Task B: ``frames_per_video`` evenly spaced frames per video, as consecutive clips in order.

    Every video gives ``frames_per_video // num_frames`` clips of ``num_frames`` frames; each has
    ``label`` = the activity id and ``is_last`` on the final clip. With ``actions`` (video name
    -> sub-action ids occurring in it) each clip also has ``actions``: a multi-hot float
    [num_actions] of the whole video's sub-actions. ``clip_options``: the other keywords of
    :class:`~tinymem.data.clip_dataset.StreamedClipDataset` (captions, crop_size, ...).
    """

    label_defaults = {"label": IGNORE_LABEL, "is_last": False}

    def __init__(
        self,
        videos: Sequence[BreakfastVideo],
        sources: Mapping[str, FrameSource],
        num_frames: int,
        frames_per_video: int,
        actions: Mapping[str, Sequence[int]] | None = None,
        num_actions: int = 0,
        **clip_options: Any,
    ) -> None:
        if num_frames < 1 or frames_per_video % num_frames:
            raise ValueError(
                f"data.frames_per_video: expected a multiple of num_frames ({num_frames}), "
                f"got {frames_per_video}"
            )
        self.video_list = sorted(videos, key=lambda v: v.name)
        self.frames_per_video = frames_per_video
        self.num_clips = frames_per_video // num_frames
        self.actions = None
        if actions is not None:
            self.actions = {  # video name -> multi-hot [num_actions]
                name: torch.zeros(num_actions).index_fill_(0, torch.tensor(list(ids)).long(), 1.0)
                for name, ids in actions.items()
            }
            self.label_defaults = {**self.label_defaults, "actions": torch.zeros(num_actions)}
        super().__init__(
            video_names=[v.name for v in self.video_list],
            item_videos=[i for i in range(len(self.video_list)) for _ in range(self.num_clips)],
            sources=sources,
            num_frames=num_frames,
            **clip_options,
        )

    def frame_indices(self, index: int) -> list[int]:
        """The item's slice of the video's evenly spaced frames."""
        video = self.video_list[self.item_videos[index]]
        samples = video_frame_samples(self.sources[video.name].num_frames, self.frames_per_video)
        first = self.clip_index[index] * self.num_frames
        return samples[first : first + self.num_frames]

    def labels(self, index: int) -> dict[str, Any]:
        """The activity id, whether this is the video's last clip and the video's actions."""
        video = self.video_list[self.item_videos[index]]
        labels = {
            "label": video.activity_index,
            "is_last": self.clip_index[index] == self.num_clips - 1,
        }
        if self.actions is not None:
            labels["actions"] = self.actions[video.name]
        return labels

"""Streamed clip classification items (EK-100, Breakfast) and their batch contract.

A dataset lists its items grouped by video in temporal order (``videos``, for
:class:`~tinymem.data.streaming.StreamingBatchSampler`); each item is one clip with labels.
:func:`collate_clips` stacks them into the batch every streaming model reads, with the same
stream keys as the AVA batch (``tinymem.data.ava.dataset.collate_keyframes``) and no boxes:

- ``video`` float [B, 3, T, H, W], normalised; ``video_id`` long [B] (index of the video in its
  dataset); ``video_name`` list[str]; ``clip_index`` long [B] (position of the clip in its video,
  0-based); ``is_first`` bool [B]; ``valid`` bool [B] (False on the sampler's padding rows);
  ``captions`` list (B) of list (T) of str, ``""`` where a video has no captions;
- the dataset's label keys, long or bool [B] (for example ``verb``, ``noun``; ``label``,
  ``is_last``), and any string keys as lists. Padding rows hold ``IGNORE_LABEL`` (-100, the
  default ``ignore_index`` of ``torch.nn.functional.cross_entropy``) and False.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from tinymem.data.frame_sources import FrameSource
from tinymem.data.stream_decoder import upcoming_frames
from tinymem.data.streaming import PAD_INDEX, padding_stream_keys, stack_videos
from tinymem.memory.caption_augment import CaptionAugment
from tinymem.memory.captions import CaptionStore

IGNORE_LABEL = -100  # label of padding rows (cross_entropy's default ignore_index)
RGB = 3


class StreamedClipDataset(Dataset, ABC):
    """Clips of whole videos, one item per clip, items of a video consecutive and in time order.

    Subclasses fill ``item_videos`` (the video position of each item, non-decreasing) and say
    which frames each item reads and what its labels are. ``label_defaults`` gives every label
    key with its padding value. Each read tells the source the frames of the video's next
    overlapping clips (:func:`~tinymem.data.stream_decoder.upcoming_frames`), so a video file
    read in stream order is decoded forward, each frame once.
    """

    label_defaults: Mapping[str, Any] = {}

    def __init__(
        self,
        video_names: Sequence[str],
        item_videos: Sequence[int],
        sources: Mapping[str, FrameSource],
        captions: CaptionStore,
        num_frames: int,
        crop_size: int,
        transform: v2.Transform,
        caption_augment: CaptionAugment | None = None,
    ) -> None:
        if list(item_videos) != sorted(item_videos):
            raise ValueError("item_videos: expected the items of each video to be consecutive")
        self.video_names = list(video_names)
        self.video_index = {name: i for i, name in enumerate(self.video_names)}
        self.item_videos = list(item_videos)
        self.sources = dict(sources)
        self.captions = captions
        self.num_frames = num_frames
        self.crop_size = crop_size
        self.transform = transform
        self.caption_augment = caption_augment
        self.videos: list[list[int]] = [[] for _ in self.video_names]
        for index, video in enumerate(self.item_videos):
            self.videos[video].append(index)
        self.clip_index = [0] * len(self.item_videos)  # position of each item in its video
        for indices in self.videos:
            for position, index in enumerate(indices):
                self.clip_index[index] = position

    def __len__(self) -> int:
        return len(self.item_videos)

    @abstractmethod
    def frame_indices(self, index: int) -> list[int]:
        """0-based frames of the item's video that make its clip (T of them)."""

    @abstractmethod
    def labels(self, index: int) -> dict[str, Any]:
        """Label fields of an item (keys of ``label_defaults``)."""

    def padding_item(self) -> dict[str, Any]:
        """The placeholder of a padded row: zeros, invalid, ignored labels."""
        size = self.crop_size
        return {
            "video": torch.zeros(RGB, self.num_frames, size, size),
            **padding_stream_keys(self.num_frames),
            **dict(self.label_defaults),
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index == PAD_INDEX:
            return self.padding_item()
        video = self.video_names[self.item_videos[index]]
        frame_ids = self.frame_indices(index)
        later = self.videos[self.item_videos[index]][self.clip_index[index] + 1 :]
        upcoming = upcoming_frames(frame_ids, map(self.frame_indices, later))
        frames = self.sources[video].read(frame_ids, upcoming)  # [T, 3, H, W] uint8
        clip = self.transform(tv_tensors.Video(frames))  # [T, 3, h, w] float
        captions = self.captions.captions(video, frame_ids)
        if self.caption_augment is not None:
            captions = [self.caption_augment(c) for c in captions]
        return {
            "video": clip.as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous(),
            "video_id": self.item_videos[index],
            "video_name": video,
            "clip_index": self.clip_index[index],
            "is_first": self.clip_index[index] == 0,
            "valid": True,
            "captions": captions,
            **self.labels(index),
        }


def collate_clips(items: list[dict[str, Any]], pin_memory: bool = False) -> dict[str, Any]:
    """Stack a streaming batch (see the module docstring for the keys and shapes).

    ``pin_memory``: the clips are stacked into page-locked memory.
    """
    batch: dict[str, Any] = {"video": stack_videos([item["video"] for item in items], pin_memory)}
    for key in items[0]:
        if key == "video":
            continue
        values = [item[key] for item in items]
        if isinstance(values[0], bool):
            batch[key] = torch.tensor(values, dtype=torch.bool)  # [B]
        elif isinstance(values[0], int):
            batch[key] = torch.tensor(values, dtype=torch.long)  # [B]
        elif isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)  # [B, ...], e.g. multi-hot targets [B, K]
        else:
            batch[key] = values  # strings, caption lists
    return batch

"""AVA-style keyframe clips: one item per annotated keyframe, streamed video by video."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from tinymem.data.ava import Keyframes
from tinymem.data.errors import DataFormatError
from tinymem.data.streaming import PAD_INDEX
from tinymem.data.video import clip_frame_indices, probe_video, read_frames
from tinymem.memory.caption_augment import CaptionAugment
from tinymem.memory.captions import CaptionStore

# SlowFast/MeMViT's Kinetics normalisation of RGB in [0, 1].
VIDEO_MEAN = (0.45, 0.45, 0.45)
VIDEO_STD = (0.225, 0.225, 0.225)
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi")


def find_video(video_dir: Path, video_id: str) -> Path:
    """Path of `video_id`'s file in `video_dir` (any common container extension)."""
    for ext in VIDEO_EXTENSIONS:
        path = video_dir / f"{video_id}{ext}"
        if path.is_file():
            return path
    raise DataFormatError(
        f"{video_dir}: no video file for video_id {video_id!r} "
        f"(looked for {', '.join(video_id + e for e in VIDEO_EXTENSIONS)})"
    )


def build_transform(train: bool, crop_size: int) -> v2.Transform:
    """Box-aware clip transform: short-side resize, crop (random in training), flip in training."""
    steps: list[v2.Transform] = [v2.Resize(crop_size)]
    if train:
        steps += [v2.RandomCrop(crop_size), v2.RandomHorizontalFlip()]
    else:
        steps += [v2.CenterCrop(crop_size)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(VIDEO_MEAN, VIDEO_STD)]
    return v2.Compose(steps)


class AvaKeyframeClips(Dataset):
    """Clips centred on AVA keyframes with boxes, multi-hot labels and per-frame captions.

    `groundtruth` gives the keyframes (and labels); `boxes` (person proposals) replaces the
    groundtruth boxes when given, as at evaluation. Items of a video are consecutive and in time
    order; `videos` lists them for the streaming sampler.
    """

    def __init__(
        self,
        groundtruth: Keyframes,
        video_dir: str | Path,
        captions: CaptionStore,
        class_ids: Sequence[int],
        num_frames: int,
        sample_rate: int,
        crop_size: int,
        video_start_sec: int,
        train: bool,
        boxes: Keyframes | None = None,
        caption_augment: CaptionAugment | None = None,
    ) -> None:
        self.groundtruth = groundtruth
        self.video_dir = Path(video_dir)
        self.captions = captions
        self.class_index = {cid: i for i, cid in enumerate(class_ids)}
        self.num_frames = num_frames
        self.sample_rate = sample_rate
        self.crop_size = crop_size
        self.video_start_sec = video_start_sec
        self.boxes = boxes
        self.caption_augment = caption_augment
        self.transform = build_transform(train, crop_size)
        self.items = sorted(groundtruth)  # (video_id, timestamp), grouped by video, time order
        self.video_names = sorted({video for video, _ in self.items})
        self.video_index = {name: i for i, name in enumerate(self.video_names)}
        self.videos: list[list[int]] = [[] for _ in self.video_names]
        for index, (video, _) in enumerate(self.items):
            self.videos[self.video_index[video]].append(index)
        self._probe = cache(probe_video)
        self._path = cache(lambda video: find_video(self.video_dir, video))

    def __len__(self) -> int:
        return len(self.items)

    def _padding_item(self) -> dict[str, Any]:
        size = self.crop_size
        return {
            "video": torch.zeros(3, self.num_frames, size, size),
            "boxes": torch.zeros(0, 4),
            "box_scores": torch.zeros(0),
            "labels": torch.zeros(0, len(self.class_index)),
            "video_id": -1,
            "video_name": "",
            "clip_index": -1,
            "is_first": True,
            "valid": False,
            "captions": [""] * self.num_frames,
        }

    def _labels(self, labels: list[int]) -> Tensor:
        target = torch.zeros(len(self.class_index))
        for label in labels:
            if label in self.class_index:
                target[self.class_index[label]] = 1.0
        return target

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index == PAD_INDEX:
            return self._padding_item()
        video, timestamp = self.items[index]
        path = self._path(video)
        info = self._probe(path)
        center = round((timestamp - self.video_start_sec) * info.fps)
        frame_ids = clip_frame_indices(center, self.num_frames, self.sample_rate, info.num_frames)
        frames = read_frames(path, frame_ids).permute(0, 3, 1, 2)  # [T, 3, H, W] uint8
        entries = (self.boxes if self.boxes is not None else self.groundtruth).get(
            (video, timestamp), []
        )
        entries = sorted(entries, key=lambda e: -e.score)  # best boxes first
        height, width = frames.shape[-2:]
        pixel = torch.tensor([b.box for b in entries], dtype=torch.float32).reshape(-1, 4)
        pixel = pixel * torch.tensor([width, height, width, height])
        clip, boxes = self.transform(
            tv_tensors.Video(frames),
            tv_tensors.BoundingBoxes(pixel, format="XYXY", canvas_size=(height, width)),
        )
        out_h, out_w = clip.shape[-2:]
        boxes = boxes.as_subclass(Tensor) / torch.tensor([out_w, out_h, out_w, out_h])
        return {
            "video": clip.permute(1, 0, 2, 3).contiguous(),  # [3, T, H, W]
            "boxes": boxes.clamp(0.0, 1.0),
            "box_scores": torch.tensor([e.score for e in entries], dtype=torch.float32),
            "labels": torch.stack([self._labels(e.labels) for e in entries])
            if entries
            else torch.zeros(0, len(self.class_index)),
            "video_id": self.video_index[video],
            "video_name": video,
            "clip_index": timestamp,  # position in the video: the keyframe second (AVA)
            "is_first": self.videos[self.video_index[video]][0] == index,
            "valid": True,
            "captions": self._captions(video, frame_ids),
        }

    def _captions(self, video: str, frame_ids: list[int]) -> list[str]:
        captions = self.captions.captions(video, frame_ids)
        if self.caption_augment is None:
            return captions
        return [self.caption_augment(c) for c in captions]


def collate_keyframes(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack a streaming batch, padding boxes to the batch maximum with a `box_mask`."""
    batch = len(items)
    max_boxes = max(1, max(item["boxes"].shape[0] for item in items))
    num_classes = items[0]["labels"].shape[1]
    boxes = torch.zeros(batch, max_boxes, 4)
    scores = torch.zeros(batch, max_boxes)
    labels = torch.zeros(batch, max_boxes, num_classes)
    box_mask = torch.zeros(batch, max_boxes, dtype=torch.bool)
    for row, item in enumerate(items):
        n = item["boxes"].shape[0]
        boxes[row, :n] = item["boxes"]
        scores[row, :n] = item["box_scores"]
        labels[row, :n] = item["labels"]
        box_mask[row, :n] = True
    return {
        "video": torch.stack([item["video"] for item in items]),  # [B, 3, T, H, W]
        "boxes": boxes,  # [B, N, 4]
        "box_scores": scores,  # [B, N]
        "labels": labels,  # [B, N, K]
        "box_mask": box_mask,  # [B, N]
        "video_id": torch.tensor([item["video_id"] for item in items]),
        "video_name": [item["video_name"] for item in items],
        "clip_index": torch.tensor([item["clip_index"] for item in items]),  # [B] seconds
        "is_first": torch.tensor([item["is_first"] for item in items]),
        "valid": torch.tensor([item["valid"] for item in items]),
        "captions": [item["captions"] for item in items],  # B x T strings
    }

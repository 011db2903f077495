"""AVA-style keyframe clips: one item per keyframe, streamed video by video."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from tinymem.data.ava.formats import Keyframes
from tinymem.data.device_transform import NO_JITTER, jitter_params
from tinymem.data.frame_sources import FrameSource
from tinymem.data.stream_decoder import upcoming_frames
from tinymem.data.streaming import PAD_INDEX, padding_stream_keys, stack_videos
from tinymem.data.video import clip_frame_indices
from tinymem.errors import DataFormatError
from tinymem.memory.caption_augment import CaptionAugment
from tinymem.memory.captions import CaptionStore
from tinymem.normalize import VIDEO_MEAN, VIDEO_STD

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi")
AUGMENT_KINDS = ("basic", "ava")


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


@dataclass(frozen=True)
class AvaAugment:
    """Which clip transform a dataset uses (config ``data.augment``).

    ``basic`` (the demo): resize the short side to ``crop_size``, random crop and flip in
    training, centre crop at evaluation. ``ava`` (the SlowFast/MeMViT AVA recipe): in training
    the short side is drawn uniformly from ``short_side`` (inclusive), then a random
    ``crop_size`` crop, horizontal flip (p 0.5) and colour jitter; at evaluation the short side
    is resized to ``eval_short_side`` (None: ``crop_size``) and the whole frame is kept (no
    crop), so frames of different aspect ratios need ``eval_batch_size: 1``.
    """

    kind: str = "basic"
    short_side: tuple[int, int] = (256, 320)  # ava training: short side range, inclusive
    eval_short_side: int | None = None  # ava evaluation short side; None = crop_size
    brightness: float = 0.4  # ava training colour jitter (SlowFast's strengths)
    contrast: float = 0.4
    saturation: float = 0.4

    def __post_init__(self) -> None:
        """Check the values; a config list becomes a tuple. Messages name the data.augment key."""
        object.__setattr__(self, "short_side", tuple(self.short_side))
        if self.kind not in AUGMENT_KINDS:
            raise ValueError(
                f"data.augment.kind: expected one of {AUGMENT_KINDS}, got {self.kind!r}"
            )
        low, high = self.short_side
        if not 0 < low <= high:
            raise ValueError(
                "data.augment.short_side: expected [min, max] with 0 < min <= max, "
                f"got {[low, high]}"
            )
        if self.eval_short_side is not None and self.eval_short_side < 1:
            raise ValueError(
                f"data.augment.eval_short_side: expected null or a positive integer, "
                f"got {self.eval_short_side}"
            )
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"data.augment.{name}: expected a number in [0, 1], got {getattr(self, name)}"
                )


def build_transform(
    train: bool, crop_size: int, augment: AvaAugment | None = None, geometric_only: bool = False
) -> v2.Transform:
    """Box-aware clip transform of a uint8 ``tv_tensors.Video`` [T, 3, H, W] (and its boxes).

    ``augment`` picks the recipe (:class:`AvaAugment`; None is ``basic``). Boxes given as
    ``tv_tensors.BoundingBoxes`` follow every resize, crop and flip; colour jitter leaves them.
    ``geometric_only``: stop after the resize, crop and flip (uint8 out; colour jitter, float
    conversion and normalisation then run on the device, :mod:`tinymem.data.device_transform`).
    """
    augment = augment or AvaAugment()
    if augment.kind == "basic":
        steps: list[v2.Transform] = [v2.Resize(crop_size)]
        if train:
            steps += [v2.RandomCrop(crop_size), v2.RandomHorizontalFlip()]
        else:
            steps += [v2.CenterCrop(crop_size)]
    elif train:
        low, high = augment.short_side
        if crop_size > low:
            raise ValueError(
                f"data.crop_size: expected <= data.augment.short_side min ({low}), got {crop_size}"
            )
        steps = [
            v2.RandomResize(low, high + 1),  # short side uniform in [low, high]
            v2.RandomCrop(crop_size),
            v2.RandomHorizontalFlip(),
            color_jitter(augment),
        ]
    else:
        steps = [v2.Resize(augment.eval_short_side or crop_size)]  # short side; whole frame
    if geometric_only:
        return v2.Compose([s for s in steps if not isinstance(s, v2.ColorJitter)])
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(VIDEO_MEAN, VIDEO_STD)]
    return v2.Compose(steps)


def color_jitter(augment: AvaAugment) -> v2.ColorJitter:
    """The ``ava`` recipe's training colour jitter."""
    return v2.ColorJitter(augment.brightness, augment.contrast, augment.saturation)


def resize_target(train: bool, crop_size: int, augment: AvaAugment | None = None) -> int:
    """Largest short side the transform resizes frames to (a reduced decode stays above it)."""
    augment = augment or AvaAugment()
    if augment.kind == "basic":
        return crop_size
    return augment.short_side[1] if train else augment.eval_short_side or crop_size


class AvaKeyframeClips(Dataset):
    """Clips centred on AVA keyframes with boxes, multi-hot labels and per-frame captions.

    One item per keyframe of ``boxes`` (person proposals, as at evaluation) or, without them,
    of ``groundtruth`` (whose boxes and labels are then used). Items of a video are consecutive
    and in time order; ``videos`` lists them for the streaming sampler. Frames come from
    ``sources`` (video id -> FrameSource); the datamodule leaves out videos it has none for.
    Keyframe second ``s`` is 0-based frame ``round((s - video_start_sec) * fps)``, with each
    source's own rate when ``fps`` is None; the clip is ``clip_frame_indices`` around it.

    Each read tells the source the frames of the video's next keyframes that overlap it, so a
    video file is decoded forward in stream order, each frame once. ``device_transform``:
    items carry uint8 clips [T, H, W, 3] (resized, cropped, flipped; boxes transformed) and
    their colour-jitter draws (``color_jitter`` [7]) for
    :func:`tinymem.data.device_transform.finish_clips`; otherwise normalised float clips
    [3, T, H, W]. ``reduced_decode``: JPEG frames at least twice the resize target are decoded
    at reduced size (DCT scaling).
    """

    def __init__(
        self,
        groundtruth: Keyframes,
        sources: Mapping[str, FrameSource],
        captions: CaptionStore,
        class_ids: Sequence[int],
        num_frames: int,
        sample_rate: int,
        crop_size: int,
        video_start_sec: int,
        train: bool,
        boxes: Keyframes | None = None,
        caption_augment: CaptionAugment | None = None,
        augment: AvaAugment | None = None,
        fps: float | None = None,
        device_transform: bool = False,
        reduced_decode: bool = True,
    ) -> None:
        self.groundtruth = groundtruth
        self.sources = sources
        self.captions = captions
        self.class_index = {cid: i for i, cid in enumerate(class_ids)}
        self.num_frames = num_frames
        self.sample_rate = sample_rate
        self.crop_size = crop_size
        self.video_start_sec = video_start_sec
        self.boxes = boxes
        self.caption_augment = caption_augment
        self.fps = fps
        self.transform = build_transform(train, crop_size, augment, device_transform)
        self.device_transform = device_transform
        augment = augment or AvaAugment()
        jitter = device_transform and train and augment.kind == "ava"
        self.jitter = color_jitter(augment) if jitter else None
        self.short_side = resize_target(train, crop_size, augment) if reduced_decode else None
        keyframes = boxes if boxes is not None else groundtruth
        self.items = sorted(keyframes)  # (video_id, timestamp), grouped by video, time order
        missing = sorted({video for video, _ in self.items} - set(sources))
        if missing:
            raise ValueError(f"no frame source for {len(missing)} videos, e.g. {missing[:3]}")
        self.video_names = sorted({video for video, _ in self.items})
        self.video_index = {name: i for i, name in enumerate(self.video_names)}
        self.videos: list[list[int]] = [[] for _ in self.video_names]
        for index, (video, _) in enumerate(self.items):
            self.videos[self.video_index[video]].append(index)

    def __len__(self) -> int:
        return len(self.items)

    def _padding_item(self) -> dict[str, Any]:
        size = self.crop_size
        if self.device_transform:
            video = torch.zeros(self.num_frames, size, size, 3, dtype=torch.uint8)
            extra = {"color_jitter": torch.tensor(NO_JITTER, dtype=torch.float64)}
        else:
            video, extra = torch.zeros(3, self.num_frames, size, size), {}
        return {
            "video": video,
            **extra,
            "boxes": torch.zeros(0, 4),
            "box_scores": torch.zeros(0),
            "labels": torch.zeros(0, len(self.class_index)),
            **padding_stream_keys(self.num_frames),
        }

    def _labels(self, labels: list[int]) -> Tensor:
        target = torch.zeros(len(self.class_index))
        for label in labels:
            if label in self.class_index:
                target[self.class_index[label]] = 1.0
        return target

    def _frame_ids(self, index: int) -> list[int]:
        """The clip's frames: ``clip_frame_indices`` around item ``index``'s keyframe."""
        video, timestamp = self.items[index]
        source = self.sources[video]
        fps = self.fps if self.fps is not None else source.fps
        center = round((timestamp - self.video_start_sec) * fps)
        return clip_frame_indices(center, self.num_frames, self.sample_rate, source.num_frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index == PAD_INDEX:
            return self._padding_item()
        video, timestamp = self.items[index]
        frame_ids = self._frame_ids(index)
        later = itertools.takewhile(
            lambda i: self.items[i][0] == video, range(index + 1, len(self.items))
        )
        upcoming = upcoming_frames(frame_ids, (self._frame_ids(i) for i in later))
        frames = self.sources[video].read(frame_ids, upcoming, self.short_side)  # [T, 3, H, W]
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
        if self.device_transform:  # uint8 [T, H, W, 3] (a view when the clip is channels-last)
            jitter = jitter_params(self.jitter) if self.jitter is not None else None
            extra = {
                "video": clip.as_subclass(Tensor).permute(0, 2, 3, 1),
                "color_jitter": torch.tensor(NO_JITTER, dtype=torch.float64)
                if jitter is None
                else jitter,
            }
        else:
            extra = {"video": clip.permute(1, 0, 2, 3).contiguous()}  # [3, T, H, W] float
        return {
            **extra,
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


def collate_keyframes(items: list[dict[str, Any]], pin_memory: bool = False) -> dict[str, Any]:
    """Stack a streaming batch, padding boxes to the batch maximum with a `box_mask`.

    Clips are float [B, 3, T, H, W], or uint8 [B, T, H, W, 3] with ``color_jitter`` [B, 7]
    (device transform). ``pin_memory``: the clips are stacked into page-locked memory.
    """
    batch = len(items)
    sizes = sorted({tuple(item["video"].shape) for item in items})
    if len(sizes) > 1:
        raise ValueError(
            f"clips of different sizes in one batch ({sizes}): frames of different aspect "
            "ratios need data.eval_batch_size 1 with data.augment.kind ava (no evaluation crop)"
        )
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
    extra = {}
    if "color_jitter" in items[0]:
        extra["color_jitter"] = torch.stack([item["color_jitter"] for item in items])  # [B, 7]
    return {
        # [B, 3, T, H, W] float, or [B, T, H, W, 3] uint8
        "video": stack_videos([item["video"] for item in items], pin_memory),
        **extra,
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

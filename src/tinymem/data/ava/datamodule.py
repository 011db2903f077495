"""The AVA-layout StreamingDataModule (real AVA v2.2 or the built-in synthetic world)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tinymem.data.ava.dataset import (
    AvaAugment,
    AvaKeyframeClips,
    collate_keyframes,
    find_video,
)
from tinymem.data.ava.formats import Keyframes, read_annotations, read_label_map, read_proposals
from tinymem.data.ava.frames import ListedJpegFrames, read_frame_list
from tinymem.data.ava.synthetic import SyntheticSpec, ensure_synthetic
from tinymem.data.device_transform import finish_clips
from tinymem.data.frame_sources import FrameSource, VideoFileSource
from tinymem.data.stream_datamodule import StreamingDataModule, StreamOptions
from tinymem.errors import DataFormatError, data_error
from tinymem.normalize import VIDEO_MEAN, VIDEO_STD

log = logging.getLogger(__name__)

FRAME_LAYOUTS = ("video", "jpeg")
PROPOSAL_MIN_SCORE = 0.9  # MViT/MeMViT's person-detection score threshold
SPLITS = ("train", "val")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AvaOptions(StreamOptions):
    """The AVA data config (``conf/data/ava.yaml``, ``synthetic.yaml``), checked.

    ``augment`` (a mapping, empty or null: ``basic``) becomes an AvaAugment, ``synthetic`` a
    SyntheticSpec.
    """

    train_csv: str
    val_csv: str
    label_map: str
    val_proposals: str | None
    val_excluded: str | None
    video_dir: str
    video_start_sec: int
    proposal_min_score: float = PROPOSAL_MIN_SCORE
    synthetic: SyntheticSpec | None = None
    frame_layout: str = "video"
    frame_dir: str = "frames"
    frame_lists: Mapping[str, str] | None = None
    frame_fps: float | None = None
    augment: AvaAugment = AvaAugment()
    num_classes: int | None = None
    device_transform: bool = False  # uint8 clips, colour jitter + normalisation on the device
    reduced_decode: bool = True  # large JPEG frames decoded at reduced size

    def __post_init__(self) -> None:
        """Check the frame layout and class count; build the augment and synthetic specs."""
        super().__post_init__()
        self._check_choice("frame_layout", FRAME_LAYOUTS)
        if self.frame_layout == "jpeg" and (self.frame_fps is None or not self.frame_lists):
            raise ValueError(
                "data.frame_fps and data.frame_lists are required with frame_layout jpeg"
            )
        if self.frame_layout == "jpeg" and set(SPLITS) - set(self.frame_lists):
            raise ValueError(
                f"data.frame_lists: expected the keys {list(SPLITS)}, "
                f"got {sorted(self.frame_lists)}"
            )
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError(
                f"data.num_classes: expected null or an integer >= 1, got {self.num_classes}"
            )
        if not isinstance(self.augment, AvaAugment):  # a config mapping; empty or null: basic
            self._set("augment", AvaAugment(**(self.augment or {})))
        self._build_synthetic(SyntheticSpec)


class AvaDataModule(StreamingDataModule):
    """Streams keyframe clips of whole videos, B parallel streams per rank.

    File names are relative to ``root``. Training items are the groundtruth keyframes with their
    boxes; evaluation items are the keyframes with person proposals (at or above
    ``proposal_min_score``), scored against the groundtruth (without proposals: the
    groundtruth keyframes and boxes). Frames come from video files in ``video_dir``
    (``frame_layout: video``, PyAV) or from the public JPEG layout under ``frame_dir`` indexed
    by the ``frame_lists`` (``frame_layout: jpeg``, see :mod:`tinymem.data.ava.frames`).
    ``num_classes`` set (AVA: 80) makes the model outputs the ids 1..num_classes (index = id -
    1) while the label map still names the evaluated classes; None uses the label map's ids.
    With ``synthetic`` set, the synthetic world is generated into ``root`` first if missing.

    Data engine: ``stream_decode`` decodes each video file forward in stream order (False: open
    and seek per clip; same pixels); with ``num_workers`` > 0 each worker owns a fixed subset
    of the rows (:class:`~tinymem.data.stream_loader.StreamingDataLoader`).
    ``device_transform`` ships uint8 clips and runs colour jitter, float conversion and
    normalisation batched after the transfer to the device (``on_after_batch_transfer``;
    False: all on the CPU, per clip). ``reduced_decode``: JPEG frames at least twice the
    resize target are decoded at reduced size.

    Bad input (documented per case): a malformed CSV row (bad timestamp, x2 < x1, ...) or
    frame-list row raises DataFormatError naming the file and line; a frame file that is
    missing or not a JPEG raises DataFormatError naming it when read. Left out and counted in
    ``skipped`` (reason -> count, logged at setup and printed with the results): annotation
    rows whose action id is not a model class, proposals below the threshold, keyframes of
    videos without frames (no video file, not in the frame list, or no frame folder; an error
    if a split has no video left), evaluation keyframes with groundtruth but no proposal (their
    boxes count as missed), and videos without a caption file (they get empty captions).
    """

    options_class = AvaOptions
    collate = staticmethod(collate_keyframes)
    write_synthetic = staticmethod(ensure_synthetic)
    options: AvaOptions

    @property
    def class_ids(self) -> list[int]:
        """Action ids of the model's outputs, in order (1..num_classes, or the label map's)."""
        if self.options.num_classes is not None:
            return list(range(1, self.options.num_classes + 1))
        return sorted(read_label_map(self.path("label_map")))

    def _sources(self, split: str, videos: set[str]) -> dict[str, FrameSource]:
        """Frame sources of the videos that have frames (others are left out by the caller)."""
        if self.options.frame_layout == "jpeg":
            counts = read_frame_list(self._frame_list(split))
            frame_dir = self.path("frame_dir")
            sources = {v: ListedJpegFrames(frame_dir, v, counts[v]) for v in videos if v in counts}
            return {v: s for v, s in sources.items() if s.exists()}
        sources = {}
        for video in videos:
            try:
                path = find_video(self.path("video_dir"), video)
                sources[video] = VideoFileSource(path, stream=self.options.stream_decode)
            except DataFormatError:
                continue
        return sources

    def _frame_list(self, split: str) -> Path:
        """The frame list of ``split`` (frame_layout jpeg)."""
        return self.options.root / self.options.frame_lists[split]

    def _with_frames(
        self, split: str, keyframes: Keyframes, sources: Mapping[str, FrameSource]
    ) -> Keyframes:
        """Keyframes of videos with frames; counts (and warns about) the others."""
        missing = sorted({video for video, _ in keyframes} - set(sources))
        kept = {key: boxes for key, boxes in keyframes.items() if key[0] in sources}
        self.count("keyframes of videos without frames (skipped)", len(keyframes) - len(kept))
        jpeg = self.options.frame_layout == "jpeg"
        where = self._frame_list(split) if jpeg else self.path("video_dir")
        if missing:
            log.warning(
                "%s: %d videos have no frames in %s, skipped: %s",
                split,
                len(missing),
                where,
                missing[:5],
            )
        if keyframes and not kept:
            raise data_error(
                where, f"expected frames for the {split} videos, found none (e.g. {missing[0]!r})"
            )
        return kept

    def setup(self, stage: str | None = None) -> None:
        """Read annotation files and build the train/val clip datasets."""
        if self.datasets:
            return
        options = self.options
        class_ids = self.class_ids
        train_gt, skipped_train = read_annotations(self.path("train_csv"), set(class_ids))
        val_gt, skipped_val = read_annotations(self.path("val_csv"), set(class_ids))
        self.skipped["annotation rows with an unknown action id (skipped)"] = (
            skipped_train + skipped_val
        )
        proposals = None
        if options.val_proposals is not None:
            min_score = options.proposal_min_score
            proposals, low = read_proposals(self.path("val_proposals"), min_score)
            self.skipped[f"proposals below score {min_score}"] = low
            self.skipped["val keyframes with groundtruth but no proposal (missed)"] = len(
                val_gt.keys() - proposals.keys()
            )
        train_sources = self._sources("train", {v for v, _ in train_gt})
        val_keys = proposals if proposals is not None else val_gt
        val_sources = self._sources("val", {v for v, _ in val_keys})
        train_gt = self._with_frames("train", train_gt, train_sources)
        if proposals is not None:
            proposals = self._with_frames("val", proposals, val_sources)
        else:
            val_gt = self._with_frames("val", val_gt, val_sources)
        common = dict(
            captions=self.caption_store(),
            class_ids=class_ids,
            augment=options.augment,
            fps=options.frame_fps if options.frame_layout == "jpeg" else None,
            num_frames=options.num_frames,
            sample_rate=options.sample_rate,
            crop_size=options.crop_size,
            video_start_sec=options.video_start_sec,
            device_transform=options.device_transform,
            reduced_decode=options.reduced_decode,
        )
        self.datasets["train"] = AvaKeyframeClips(
            train_gt, train_sources, train=True, caption_augment=options.caption_augment, **common
        )
        self.datasets["val"] = AvaKeyframeClips(
            val_gt, val_sources, train=False, boxes=proposals, **common
        )
        self.report()

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Finish uint8 clips on the device: colour jitter, float, normalise (device_transform)."""
        if isinstance(batch, dict) and batch["video"].dtype == torch.uint8:
            batch["video"] = finish_clips(
                batch["video"],
                batch.pop("color_jitter", None),
                batch["valid"],
                VIDEO_MEAN,
                VIDEO_STD,
            )  # [B, 3, T, H, W] float
        return batch

    def eval_files(self) -> dict[str, str | None]:
        """Files the evaluator needs: groundtruth CSV, label map, excluded timestamps."""
        files = {"groundtruth": "val_csv", "label_map": "label_map", "excluded": "val_excluded"}
        paths = {name: self.path(key) for name, key in files.items()}
        return {name: None if path is None else str(path) for name, path in paths.items()}

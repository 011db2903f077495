"""LightningDataModule for AVA-layout data (real AVA v2.2 or the built-in synthetic world)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from tinymem.data.ava import Keyframes, read_annotations, read_label_map, read_proposals
from tinymem.data.ava_clips import (
    VIDEO_MEAN,
    VIDEO_STD,
    AvaAugment,
    AvaKeyframeClips,
    collate_keyframes,
    find_video,
)
from tinymem.data.ava_frames import ListedJpegFrames, read_frame_list
from tinymem.data.device_transform import finish_clips
from tinymem.data.errors import DataFormatError, data_error
from tinymem.data.frame_sources import FrameSource, VideoFileSource
from tinymem.data.stream_loader import StreamingDataLoader
from tinymem.data.streaming import StreamingBatchSampler
from tinymem.data.synthetic import SyntheticSpec, ensure_synthetic
from tinymem.memory.caption_augment import CaptionAugment
from tinymem.memory.captions import CaptionStore

log = logging.getLogger(__name__)

FRAME_LAYOUTS = ("video", "jpeg")
PROPOSAL_MIN_SCORE = 0.9  # MViT/MeMViT's person-detection score threshold
SPLITS = ("train", "val")
NO_CAPTIONS = "videos without a caption file (empty captions used)"


class AvaDataModule(pl.LightningDataModule):
    """Streams keyframe clips of whole videos, B parallel streams per rank.

    File names are relative to ``root``. Training items are the groundtruth keyframes with their
    boxes; evaluation items are the keyframes with person proposals (at or above
    ``proposal_min_score``), scored against the groundtruth (without proposals: the
    groundtruth keyframes and boxes). Frames come from video files in ``video_dir``
    (``frame_layout: video``, PyAV) or from the public JPEG layout under ``frame_dir`` indexed
    by the ``frame_lists`` (``frame_layout: jpeg``, see :mod:`tinymem.data.ava_frames`).
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

    def __init__(
        self,
        root: str,
        train_csv: str,
        val_csv: str,
        label_map: str,
        val_proposals: str | None,
        val_excluded: str | None,
        video_dir: str,
        caption_dir: str,
        num_frames: int,
        sample_rate: int,
        crop_size: int,
        video_start_sec: int,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = True,
        proposal_min_score: float = PROPOSAL_MIN_SCORE,
        seed: int = 0,
        synthetic: Mapping[str, Any] | None = None,
        caption_augment: Mapping[str, Any] | None = None,
        frame_layout: str = "video",
        frame_dir: str = "frames",
        frame_lists: Mapping[str, str] | None = None,
        frame_fps: float | None = None,
        augment: Mapping[str, Any] | None = None,
        num_classes: int | None = None,
        stream_decode: bool = True,
        device_transform: bool = False,
        reduced_decode: bool = True,
    ) -> None:
        super().__init__()
        if frame_layout not in FRAME_LAYOUTS:
            raise ValueError(
                f"data.frame_layout: expected one of {FRAME_LAYOUTS}, got {frame_layout!r}"
            )
        if frame_layout == "jpeg" and (frame_fps is None or not frame_lists):
            raise ValueError(
                "data.frame_fps and data.frame_lists are required with frame_layout jpeg"
            )
        if frame_layout == "jpeg" and set(SPLITS) - set(frame_lists):
            raise ValueError(
                f"data.frame_lists: expected the keys {list(SPLITS)}, got {sorted(frame_lists)}"
            )
        if num_classes is not None and num_classes < 1:
            raise ValueError(
                f"data.num_classes: expected null or an integer >= 1, got {num_classes}"
            )
        self.root = Path(root)
        self.cfg = dict(
            num_frames=num_frames,
            sample_rate=sample_rate,
            crop_size=crop_size,
            video_start_sec=video_start_sec,
        )
        self.files = dict(
            train_csv=train_csv,
            val_csv=val_csv,
            label_map=label_map,
            val_proposals=val_proposals,
            val_excluded=val_excluded,
        )
        self.video_dir = self.root / video_dir
        self.caption_dir = self.root / caption_dir
        self.frame_layout = frame_layout
        self.frame_dir = self.root / frame_dir
        self.frame_lists = {k: self.root / v for k, v in (frame_lists or {}).items()}
        self.frame_fps = frame_fps
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.proposal_min_score = proposal_min_score
        self.seed = seed
        self.synthetic = SyntheticSpec(**synthetic) if synthetic is not None else None
        self.caption_augment = CaptionAugment(**caption_augment) if caption_augment else None
        self.augment = AvaAugment(**augment) if augment else AvaAugment()
        self.num_classes = num_classes
        self.stream_decode = stream_decode
        self.device_transform = device_transform
        self.reduced_decode = reduced_decode
        self.datasets: dict[str, AvaKeyframeClips] = {}
        self.skipped: dict[str, int] = {}  # what was left out of the data, by reason
        # training sampler position to resume from (set by tinymem.lit.callbacks.StreamResume)
        self.resume_state: Mapping[str, Any] | None = None

    def path(self, key: str) -> str | None:
        """Absolute path of the file named by config key `key` (None when unset)."""
        name = self.files[key]
        return None if name is None else str(self.root / name)

    @property
    def class_ids(self) -> list[int]:
        """Action ids of the model's outputs, in order (1..num_classes, or the label map's)."""
        if self.num_classes is not None:
            return list(range(1, self.num_classes + 1))
        return sorted(read_label_map(self.path("label_map")))

    def prepare_data(self) -> None:
        """Generate the synthetic world once (no-op for real data or when already there)."""
        if self.synthetic is not None:
            ensure_synthetic(self.root, self.synthetic)

    def _sources(self, split: str, videos: set[str]) -> dict[str, FrameSource]:
        """Frame sources of the videos that have frames (others are left out by the caller)."""
        if self.frame_layout == "jpeg":
            counts = read_frame_list(self.frame_lists[split])
            sources = {
                v: ListedJpegFrames(self.frame_dir, v, counts[v]) for v in videos if v in counts
            }
            return {v: s for v, s in sources.items() if s.exists()}
        sources = {}
        for video in videos:
            try:
                path = find_video(self.video_dir, video)
                sources[video] = VideoFileSource(path, stream=self.stream_decode)
            except DataFormatError:
                continue
        return sources

    def _with_frames(
        self, split: str, keyframes: Keyframes, sources: Mapping[str, FrameSource]
    ) -> Keyframes:
        """Keyframes of videos with frames; counts (and warns about) the others."""
        missing = sorted({video for video, _ in keyframes} - set(sources))
        kept = {key: boxes for key, boxes in keyframes.items() if key[0] in sources}
        reason = "keyframes of videos without frames (skipped)"
        self.skipped[reason] = self.skipped.get(reason, 0) + len(keyframes) - len(kept)
        where = self.frame_lists[split] if self.frame_layout == "jpeg" else self.video_dir
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
        class_ids = self.class_ids
        captions = CaptionStore(self.caption_dir)
        train_gt, skipped_train = read_annotations(self.path("train_csv"), set(class_ids))
        val_gt, skipped_val = read_annotations(self.path("val_csv"), set(class_ids))
        self.skipped["annotation rows with an unknown action id (skipped)"] = (
            skipped_train + skipped_val
        )
        proposals = None
        if self.files["val_proposals"] is not None:
            proposals, low = read_proposals(self.path("val_proposals"), self.proposal_min_score)
            self.skipped[f"proposals below score {self.proposal_min_score}"] = low
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
            captions=captions,
            class_ids=class_ids,
            augment=self.augment,
            fps=self.frame_fps if self.frame_layout == "jpeg" else None,
            device_transform=self.device_transform,
            reduced_decode=self.reduced_decode,
            **self.cfg,
        )
        self.datasets["train"] = AvaKeyframeClips(
            train_gt, train_sources, train=True, caption_augment=self.caption_augment, **common
        )
        self.datasets["val"] = AvaKeyframeClips(
            val_gt, val_sources, train=False, boxes=proposals, **common
        )
        videos = {v for ds in self.datasets.values() for v in ds.video_names}
        no_captions = sorted(v for v in videos if not captions.path(v).is_file())
        self.skipped[NO_CAPTIONS] = len(no_captions)
        if no_captions:
            log.warning(
                "%d of %d videos have no caption file in %s (empty-caption fallback), e.g. %s",
                len(no_captions),
                len(videos),
                self.caption_dir,
                no_captions[:3],
            )
        for reason, count in self.skipped.items():
            log.info("skipped: %d %s", count, reason)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> StreamingDataLoader:
        dataset = self.datasets[split]
        sampler = StreamingBatchSampler(dataset.videos, batch_size, shuffle=shuffle, seed=self.seed)
        if split == "train" and self.resume_state is not None:
            sampler.load_state_dict(self.resume_state)
            self.resume_state = None
        return StreamingDataLoader(
            dataset,
            sampler,
            collate_keyframes,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
        )

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

    def train_dataloader(self) -> StreamingDataLoader:
        """Streaming training batches (video order reshuffled every epoch)."""
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> StreamingDataLoader:
        """Streaming validation batches in a fixed order."""
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> StreamingDataLoader:
        """The validation split (AVA's test set has no public labels)."""
        return self.val_dataloader()

    def eval_files(self) -> dict[str, str | None]:
        """Files the evaluator needs: groundtruth CSV, label map, excluded timestamps."""
        return {
            "groundtruth": self.path("val_csv"),
            "label_map": self.path("label_map"),
            "excluded": self.path("val_excluded"),
        }

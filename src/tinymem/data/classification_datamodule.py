"""LightningDataModules of the clip classification datasets: Epic-Kitchens-100 and Breakfast.

Both stream whole videos clip by clip (``StreamingBatchSampler``, B parallel streams per rank,
video order reshuffled per training epoch, clip order never) and collate with
:func:`tinymem.data.clip_dataset.collate_clips`. File names are relative to ``root``. What is
left out is counted in ``skipped`` (reason -> count) and logged at setup: segments or videos
whose frames / video file is missing, and videos without a caption file (they get ``""``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from tinymem.data.breakfast import (
    ACTIVITIES,
    BreakfastActivityClips,
    BreakfastAnnotation,
    BreakfastSegments,
    BreakfastVideo,
    check_bundle_split,
    find_groundtruth_files,
    find_segmentation_files,
    parse_video_name,
    read_groundtruth,
    read_mapping,
    read_segmentation,
    split_videos,
)
from tinymem.data.clip_dataset import StreamedClipDataset, collate_clips
from tinymem.data.clip_transforms import ClipAugment, build_clip_transform
from tinymem.data.epic_kitchens import (
    EpicKitchensSegments,
    EpicSegment,
    read_epic_annotations,
    read_video_info,
)
from tinymem.data.errors import data_error
from tinymem.data.frame_sources import FrameSource, JpegFolderSource, VideoFileSource
from tinymem.data.streaming import StreamingBatchSampler
from tinymem.data.synthetic_breakfast import SyntheticBreakfastSpec, ensure_synthetic_breakfast
from tinymem.data.synthetic_epic import SyntheticEpicSpec, ensure_synthetic_epic
from tinymem.memory.caption_augment import CaptionAugment
from tinymem.memory.captions import CaptionStore
from tinymem.models.heads import EK100_NOUNS, EK100_VERBS

log = logging.getLogger(__name__)

EPIC_SOURCES = ("frames", "video")  # JPEG frame folders or video files
BREAKFAST_TASKS = ("subaction", "activity")  # task A, task B
# Task B targets: the video's sub-actions (multi-label over mapping.txt, the paper's table 12)
# or its activity (single-label over the 10 activities).
ACTIVITY_TARGETS = ("actions", "activity")
BREAKFAST_FORMATS = ("groundtruth", "segmentation")  # per-frame files or raw segment files
NO_CAPTIONS = "videos without a caption file (empty captions used)"


class ClipDataModule(pl.LightningDataModule):
    """Shared part: transforms, caption store, skip counts and the streaming loaders."""

    def __init__(
        self,
        root: str,
        caption_dir: str,
        num_frames: int,
        sample_rate: int,
        crop_size: int,
        train_short_side: Sequence[int],
        eval_short_side: int,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int = 0,
        seed: int = 0,
        label_smoothing: float = 0.0,
        augment: Mapping[str, Any] | None = None,
        caption_augment: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if len(train_short_side) != 2:
            raise ValueError(
                f"data.train_short_side: expected [min, max], got {list(train_short_side)}"
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"data.label_smoothing: expected a number in [0, 1), got {label_smoothing}"
            )
        self.root = Path(root)
        self.caption_dir = self.root / caption_dir
        self.num_frames = num_frames
        self.sample_rate = sample_rate
        self.crop_size = crop_size
        self.train_short_side = (int(train_short_side[0]), int(train_short_side[1]))
        self.eval_short_side = eval_short_side
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.label_smoothing = label_smoothing  # read by the LightningModule's loss
        self.augment = ClipAugment(**augment) if augment is not None else None
        self.caption_augment = CaptionAugment(**caption_augment) if caption_augment else None
        for train in (True, False):  # fail on bad sizes before any file is read
            self.transform(train)
        self.datasets: dict[str, StreamedClipDataset] = {}
        self.skipped: dict[str, int] = {}  # what was left out of the data, by reason

    def transform(self, train: bool):
        """The clip transform of training (augmented) or evaluation."""
        return build_clip_transform(
            train,
            self.crop_size,
            self.train_short_side,
            self.eval_short_side,
            self.augment if train else None,
        )

    def dataset_options(self, train: bool) -> dict[str, Any]:
        """Keyword arguments every clip dataset takes."""
        return dict(
            captions=CaptionStore(self.caption_dir),
            num_frames=self.num_frames,
            crop_size=self.crop_size,
            transform=self.transform(train),
            caption_augment=self.caption_augment if train else None,
        )

    def count(self, reason: str, number: int) -> None:
        """Add ``number`` to the skip count of ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + number

    def keep_available(
        self, sources: Mapping[str, FrameSource], what: str
    ) -> tuple[dict[str, FrameSource], set[str]]:
        """Split sources into those whose file/folder exists and the names of the missing ones."""
        missing = {name for name, source in sources.items() if not source.exists()}
        if missing:
            log.warning(
                "%d of %d videos have no %s, skipped, e.g. %s",
                len(missing),
                len(sources),
                what,
                [str(sources[name]) for name in sorted(missing)[:3]],
            )
        if missing and len(missing) == len(sources):
            example = sources[sorted(missing)[0]]
            raise data_error(
                self.root, f"expected {what} for the annotated videos, found none (e.g. {example})"
            )
        return {k: v for k, v in sources.items() if k not in missing}, missing

    def report(self) -> None:
        """Count videos without captions and log every skip count."""
        store = CaptionStore(self.caption_dir)
        videos = {name for ds in self.datasets.values() for name in ds.video_names}
        no_captions = sorted(v for v in videos if not store.path(v).is_file())
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

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        dataset = self.datasets[split]
        sampler = StreamingBatchSampler(dataset.videos, batch_size, shuffle=shuffle, seed=self.seed)
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate_clips,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Streaming training batches (video order reshuffled every epoch)."""
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Streaming validation batches in a fixed order."""
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """The validation split (no public test labels: EK-100; Breakfast tests on it)."""
        return self.val_dataloader()


class EpicKitchensDataModule(ClipDataModule):
    """Epic-Kitchens-100: one clip per action segment, verb and noun labels.

    ``source="frames"`` reads ``media_dir/frame_pattern`` JPEG files (fields
    ``{participant_id}``, ``{video_id}``, ``{frame}`` numbered from ``first_frame_number``);
    ``source="video"`` decodes ``media_dir/video_pattern`` and places segments by their
    timestamps (frame folders: by their 60 fps frame numbers). ``video_info_csv`` (optional)
    lists the videos; a segment of a video it lacks is an error. Validation
    (and test) use EPIC_100_validation.csv. With ``synthetic`` set, the synthetic world is
    generated into ``root`` first if it is missing.
    """

    def __init__(
        self,
        root: str,
        train_csv: str,
        val_csv: str,
        video_info_csv: str | None,
        source: str,
        media_dir: str,
        frame_pattern: str,
        first_frame_number: int,
        video_pattern: str,
        caption_dir: str,
        num_frames: int,
        sample_rate: int,
        crop_size: int,
        train_short_side: Sequence[int],
        eval_short_side: int,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int = 0,
        seed: int = 0,
        num_verbs: int = EK100_VERBS,
        num_nouns: int = EK100_NOUNS,
        label_smoothing: float = 0.0,
        augment: Mapping[str, Any] | None = None,
        caption_augment: Mapping[str, Any] | None = None,
        synthetic: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            root=root,
            caption_dir=caption_dir,
            num_frames=num_frames,
            sample_rate=sample_rate,
            crop_size=crop_size,
            train_short_side=train_short_side,
            eval_short_side=eval_short_side,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            seed=seed,
            label_smoothing=label_smoothing,
            augment=augment,
            caption_augment=caption_augment,
        )
        if source not in EPIC_SOURCES:
            raise ValueError(f"data.source: expected one of {EPIC_SOURCES}, got {source!r}")
        self.files = dict(train_csv=train_csv, val_csv=val_csv, video_info_csv=video_info_csv)
        self.source = source
        self.media_dir = self.root / media_dir
        self.frame_pattern = frame_pattern
        self.first_frame_number = first_frame_number
        self.video_pattern = video_pattern
        self.num_verbs = num_verbs
        self.num_nouns = num_nouns
        self.synthetic = SyntheticEpicSpec(**synthetic) if synthetic is not None else None

    def path(self, key: str) -> str | None:
        """Absolute path of the file named by config key ``key`` (None when unset)."""
        name = self.files[key]
        return None if name is None else str(self.root / name)

    def prepare_data(self) -> None:
        """Generate the synthetic world once (no-op for real data or when already there)."""
        if self.synthetic is not None:
            ensure_synthetic_epic(self.root, self.synthetic)

    def frame_source(self, segment: EpicSegment) -> FrameSource:
        """Where the frames of a segment's video are."""
        fields = {"participant_id": segment.participant_id, "video_id": segment.video_id}
        if self.source == "frames":
            return JpegFolderSource(
                self.media_dir, self.frame_pattern, fields, self.first_frame_number
            )
        return VideoFileSource(self.media_dir / self.video_pattern.format(**fields))

    def setup(self, stage: str | None = None) -> None:
        """Read the annotation files and build the train/val segment datasets."""
        if self.datasets:
            return
        info_path = self.path("video_info_csv")
        fps = {v: i.fps for v, i in read_video_info(info_path).items()} if info_path else None
        what = "frame folder" if self.source == "frames" else "video file"
        for split, key in (("train", "train_csv"), ("val", "val_csv")):
            csv_path = self.path(key)
            segments = read_epic_annotations(csv_path, self.num_verbs, self.num_nouns)
            if fps is not None:
                unknown = next((s for s in segments if s.video_id not in fps), None)
                if unknown is not None:
                    raise data_error(
                        csv_path,
                        f"expected video {unknown.video_id!r} in {info_path}, it is not there",
                        unknown.line,
                    )
            sources = {s.video_id: self.frame_source(s) for s in segments}
            sources, missing = self.keep_available(sources, what)
            kept = [s for s in segments if s.video_id not in missing]
            self.count(f"segments of videos without a {what} (skipped)", len(segments) - len(kept))
            self.datasets[split] = EpicKitchensSegments(
                kept,
                annotation_file=csv_path,
                sources=sources,
                sample_rate=self.sample_rate,
                **self.dataset_options(train=split == "train"),
            )
        self.report()


class BreakfastDataModule(ClipDataModule):
    """Breakfast, task ``subaction`` (A: per-segment sub-actions) or ``activity`` (B).

    Videos of a split come from the ``train_bundle`` / ``test_bundle`` files (checked against
    the subject split), or, when those are null, from every annotated video split by subject.
    Segments come from ``groundtruth_dir`` (per-frame files) or ``segmentation_dir`` (raw
    ``start-end label`` files), names resolved by ``mapping``. Videos are
    ``video_dir/video_pattern`` (``stereo_video_pattern`` for stereo cameras), with fields
    ``{subject}``, ``{camera}``, ``{activity}``, ``{video}``. Validation and test are the split's
    test side. With ``synthetic`` set, the synthetic world is generated into ``root`` first.
    """

    def __init__(
        self,
        root: str,
        task: str,
        split: int,
        mapping: str,
        annotation_format: str,
        groundtruth_dir: str,
        segmentation_dir: str,
        train_bundle: str | None,
        test_bundle: str | None,
        video_dir: str,
        video_pattern: str,
        stereo_video_pattern: str,
        caption_dir: str,
        num_frames: int,
        sample_rate: int,
        frames_per_video: int,
        crop_size: int,
        train_short_side: Sequence[int],
        eval_short_side: int,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int = 0,
        seed: int = 0,
        label_smoothing: float = 0.0,
        augment: Mapping[str, Any] | None = None,
        caption_augment: Mapping[str, Any] | None = None,
        synthetic: Mapping[str, Any] | None = None,
        activity_target: str = "actions",
    ) -> None:
        super().__init__(
            root=root,
            caption_dir=caption_dir,
            num_frames=num_frames,
            sample_rate=sample_rate,
            crop_size=crop_size,
            train_short_side=train_short_side,
            eval_short_side=eval_short_side,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            seed=seed,
            label_smoothing=label_smoothing,
            augment=augment,
            caption_augment=caption_augment,
        )
        if task not in BREAKFAST_TASKS:
            raise ValueError(f"data.task: expected one of {BREAKFAST_TASKS}, got {task!r}")
        if activity_target not in ACTIVITY_TARGETS:
            raise ValueError(
                f"data.activity_target: expected one of {ACTIVITY_TARGETS}, got {activity_target!r}"
            )
        self.activity_target = activity_target
        if annotation_format not in BREAKFAST_FORMATS:
            raise ValueError(
                f"data.annotation_format: expected one of {BREAKFAST_FORMATS}, "
                f"got {annotation_format!r}"
            )
        if (train_bundle is None) != (test_bundle is None):
            raise ValueError("data.train_bundle / data.test_bundle: expected both set or both null")
        if task == "activity" and frames_per_video % num_frames:
            raise ValueError(
                f"data.frames_per_video: expected a multiple of num_frames ({num_frames}), "
                f"got {frames_per_video}"
            )
        split_videos([], split)  # checks split is 1..4
        self.task = task
        self.split = split
        self.annotation_format = annotation_format
        self.files = dict(
            mapping=mapping,
            groundtruth_dir=groundtruth_dir,
            segmentation_dir=segmentation_dir,
            train_bundle=train_bundle,
            test_bundle=test_bundle,
        )
        self.video_dir = self.root / video_dir
        self.video_pattern = video_pattern
        self.stereo_video_pattern = stereo_video_pattern
        self.frames_per_video = frames_per_video
        self.synthetic = SyntheticBreakfastSpec(**synthetic) if synthetic is not None else None
        self.class_names: list[str] = []  # mapping.txt names, filled by setup()

    def path(self, key: str) -> Path | None:
        """Absolute path of the file/folder named by config key ``key`` (None when unset)."""
        name = self.files[key]
        return None if name is None else self.root / name

    @property
    def num_classes(self) -> int:
        """Outputs: sub-actions in mapping.txt (A; B's actions) or the 10 activities (B)."""
        if self.task == "activity" and self.activity_target == "activity":
            return len(ACTIVITIES)
        if not self.class_names:
            self.class_names = read_mapping(self.path("mapping"))
        return len(self.class_names)

    def prepare_data(self) -> None:
        """Generate the synthetic world once (no-op for real data or when already there)."""
        if self.synthetic is not None:
            ensure_synthetic_breakfast(self.root, self.synthetic)

    def _annotation_files(self) -> dict[str, Path]:
        """Video name -> annotation file in the configured layout."""
        if self.annotation_format == "segmentation":
            return find_segmentation_files(self.path("segmentation_dir"))
        found = find_groundtruth_files(self.path("groundtruth_dir"))
        log.info("Breakfast %s: %s", self.path("groundtruth_dir"), found.describe())
        return found.files

    def _split(self, files: Mapping[str, Path]) -> dict[str, list[BreakfastVideo]]:
        """Train and test videos, from the bundles or by subject."""
        if self.files["train_bundle"] is not None:
            train = check_bundle_split(self.path("train_bundle"), self.split, test=False)
            test = check_bundle_split(self.path("test_bundle"), self.split, test=True)
        else:
            videos = [parse_video_name(name, path) for name, path in files.items()]
            train, test = split_videos(videos, self.split)
        return {"train": train, "val": test}

    def _annotation(self, video: BreakfastVideo, files: Mapping[str, Path]) -> BreakfastAnnotation:
        """Segments of one video from its annotation file."""
        classes = {name: i for i, name in enumerate(self.class_names)}
        if video.name not in files:
            folder = self.path(f"{self.annotation_format}_dir")
            raise data_error(folder, f"expected an annotation file for video {video.name}")
        path = files[video.name]
        reader = read_segmentation if self.annotation_format == "segmentation" else read_groundtruth
        return BreakfastAnnotation(video=video, segments=tuple(reader(path, classes)), path=path)

    def setup(self, stage: str | None = None) -> None:
        """Read mapping, splits and annotations and build the train/val datasets of the task."""
        if self.datasets:
            return
        self.class_names = read_mapping(self.path("mapping"))
        files = self._annotation_files()
        for split, videos in self._split(files).items():
            sources = {
                v.name: VideoFileSource(
                    self.video_dir / v.video_path(self.video_pattern, self.stereo_video_pattern)
                )
                for v in videos
            }
            sources, missing = self.keep_available(sources, "video file")
            self.count("videos without a video file (skipped)", len(missing))
            kept = [v for v in videos if v.name not in missing]
            options = self.dataset_options(train=split == "train")
            if self.task == "activity":
                actions = None
                if self.activity_target == "actions":  # every sub-action of the video
                    annotations = (self._annotation(v, files) for v in kept)
                    actions = {a.video.name: {s.label for s in a.segments} for a in annotations}
                self.datasets[split] = BreakfastActivityClips(
                    kept,
                    sources=sources,
                    frames_per_video=self.frames_per_video,
                    actions=actions,
                    num_actions=len(self.class_names),
                    **options,
                )
                continue
            annotations = [self._annotation(v, files) for v in kept]
            self.datasets[split] = BreakfastSegments(
                annotations, sources=sources, sample_rate=self.sample_rate, **options
            )
        self.report()

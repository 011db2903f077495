"""LightningDataModules of the clip classification datasets: Epic-Kitchens-100 and Breakfast.

Both are :class:`~tinymem.data.stream_datamodule.StreamingDataModule` s (loaders, resume, skip
reporting, options) that collate with :func:`tinymem.data.clip_dataset.collate_clips`. File
names are relative to ``root``. What is left out is counted in ``skipped`` (reason -> count) and
logged at setup: segments or videos whose frames / video file is missing, and videos without a
caption file (they get ``""``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinymem.data.breakfast import (
    ACTIVITIES,
    ANNOTATION_SUFFIX,
    BreakfastActivityClips,
    BreakfastAnnotation,
    BreakfastSegments,
    BreakfastVideo,
    check_bundle_split,
    find_segmentation_files,
    parse_video_name,
    read_groundtruth,
    read_mapping,
    read_segmentation,
    split_videos,
)
from tinymem.data.clip_dataset import collate_clips
from tinymem.data.clip_transforms import ClipAugment, build_clip_transform
from tinymem.data.epic_kitchens import (
    EpicKitchensSegments,
    EpicSegment,
    read_epic_annotations,
    read_video_info,
)
from tinymem.data.errors import data_error
from tinymem.data.frame_sources import FrameSource, JpegFolderSource, VideoFileSource
from tinymem.data.stream_datamodule import StreamingDataModule, StreamOptions
from tinymem.data.synthetic_breakfast import SyntheticBreakfastSpec, ensure_synthetic_breakfast
from tinymem.data.synthetic_epic import SyntheticEpicSpec, ensure_synthetic_epic
from tinymem.memory.captions import CaptionStore
from tinymem.models.heads import EK100_NOUNS, EK100_VERBS

log = logging.getLogger(__name__)

EPIC_SOURCES = ("frames", "video")  # JPEG frame folders or video files
BREAKFAST_TASKS = ("subaction", "activity")  # task A, task B
BREAKFAST_FORMATS = ("groundtruth", "segmentation")  # per-frame files or raw segment files


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClipOptions(StreamOptions):
    """Keys of the clip classification configs: clip transforms, label smoothing, augmentation.

    ``augment`` (a mapping; empty: the defaults, null: no augmentation) becomes a ClipAugment.
    """

    train_short_side: tuple[int, int]  # training short side, uniform in [min, max]
    eval_short_side: int  # evaluation short side, then a centre crop
    label_smoothing: float = 0.0  # read by the LightningModule's loss
    augment: ClipAugment | None = None  # training only

    def __post_init__(self) -> None:
        """Check the short side range and label smoothing; build the augmentation."""
        super().__post_init__()
        if len(self.train_short_side) != 2:
            raise ValueError(
                f"data.train_short_side: expected [min, max], got {list(self.train_short_side)}"
            )
        self._set("train_short_side", tuple(int(side) for side in self.train_short_side))
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"data.label_smoothing: expected a number in [0, 1), got {self.label_smoothing}"
            )
        if self.augment is not None and not isinstance(self.augment, ClipAugment):
            self._set("augment", ClipAugment(**self.augment))


class ClipDataModule(StreamingDataModule):
    """Shared part of EK-100 and Breakfast: transforms, dataset options, available videos."""

    options_class = ClipOptions
    collate = staticmethod(collate_clips)
    options: ClipOptions

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        for train in (True, False):  # fail on bad sizes before any file is read
            self.transform(train)

    def transform(self, train: bool):
        """The clip transform of training (augmented) or evaluation."""
        options = self.options
        return build_clip_transform(
            train,
            options.crop_size,
            options.train_short_side,
            options.eval_short_side,
            options.augment if train else None,
        )

    def dataset_options(self, train: bool) -> dict[str, Any]:
        """Keyword arguments every clip dataset takes."""
        return dict(
            captions=CaptionStore(self.path("caption_dir")),
            num_frames=self.options.num_frames,
            crop_size=self.options.crop_size,
            transform=self.transform(train),
            caption_augment=self.options.caption_augment if train else None,
        )

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
                self.options.root,
                f"expected {what} for the annotated videos, found none (e.g. {example})",
            )
        return {k: v for k, v in sources.items() if k not in missing}, missing


@dataclasses.dataclass(frozen=True, kw_only=True)
class EpicOptions(ClipOptions):
    """The EK-100 data config (``conf/data/epic_kitchens.yaml``), checked."""

    train_csv: str
    val_csv: str
    video_info_csv: str | None  # fps per video; null: the annotation frames are the files'
    source: str  # frames | video
    media_dir: str
    frame_pattern: str
    first_frame_number: int
    video_pattern: str
    num_verbs: int = EK100_VERBS
    num_nouns: int = EK100_NOUNS
    synthetic: SyntheticEpicSpec | None = None

    def __post_init__(self) -> None:
        """Check the source; build the synthetic spec."""
        super().__post_init__()
        if self.source not in EPIC_SOURCES:
            raise ValueError(f"data.source: expected one of {EPIC_SOURCES}, got {self.source!r}")
        if self.synthetic is not None:
            self._set("synthetic", SyntheticEpicSpec(**self.synthetic))


class EpicKitchensDataModule(ClipDataModule):
    """Epic-Kitchens-100: one clip per action segment, verb and noun labels.

    ``source="frames"`` reads ``media_dir/frame_pattern`` JPEG files (fields
    ``{participant_id}``, ``{video_id}``, ``{frame}`` numbered from ``first_frame_number``);
    ``source="video"`` decodes ``media_dir/video_pattern``. ``video_info_csv`` (optional) gives
    the annotation frame rate, used to rescale segment frames for re-encoded videos. Validation
    (and test) use EPIC_100_validation.csv. With ``synthetic`` set, the synthetic world is
    generated into ``root`` first if it is missing.
    """

    options_class = EpicOptions
    write_synthetic = staticmethod(ensure_synthetic_epic)
    options: EpicOptions

    def frame_source(self, segment: EpicSegment) -> FrameSource:
        """Where the frames of a segment's video are."""
        options = self.options
        fields = {"participant_id": segment.participant_id, "video_id": segment.video_id}
        media_dir = self.path("media_dir")
        if options.source == "frames":
            return JpegFolderSource(
                media_dir, options.frame_pattern, fields, options.first_frame_number
            )
        return VideoFileSource(media_dir / options.video_pattern.format(**fields))

    def setup(self, stage: str | None = None) -> None:
        """Read the annotation files and build the train/val segment datasets."""
        if self.datasets:
            return
        info_path = self.path("video_info_csv")
        fps = {v: i.fps for v, i in read_video_info(info_path).items()} if info_path else None
        options = self.options
        what = "frame folder" if options.source == "frames" else "video file"
        for split, key in (("train", "train_csv"), ("val", "val_csv")):
            csv_path = self.path(key)
            segments = read_epic_annotations(csv_path, options.num_verbs, options.num_nouns)
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
                sample_rate=options.sample_rate,
                annotation_fps=fps,
                **self.dataset_options(train=split == "train"),
            )
        self.report()


@dataclasses.dataclass(frozen=True, kw_only=True)
class BreakfastOptions(ClipOptions):
    """The Breakfast data config (``conf/data/breakfast.yaml``), checked."""

    task: str  # subaction (task A) | activity (task B)
    split: int  # 1..4
    mapping: str
    annotation_format: str  # groundtruth | segmentation
    groundtruth_dir: str
    segmentation_dir: str
    train_bundle: str | None  # null (both): split every annotated video by subject
    test_bundle: str | None
    video_dir: str
    video_pattern: str
    stereo_video_pattern: str
    frames_per_video: int  # task B
    synthetic: SyntheticBreakfastSpec | None = None

    def __post_init__(self) -> None:
        """Check the task, format, bundles, split and task B's frame count; build the spec."""
        super().__post_init__()
        if self.task not in BREAKFAST_TASKS:
            raise ValueError(f"data.task: expected one of {BREAKFAST_TASKS}, got {self.task!r}")
        if self.annotation_format not in BREAKFAST_FORMATS:
            raise ValueError(
                f"data.annotation_format: expected one of {BREAKFAST_FORMATS}, "
                f"got {self.annotation_format!r}"
            )
        if (self.train_bundle is None) != (self.test_bundle is None):
            raise ValueError("data.train_bundle / data.test_bundle: expected both set or both null")
        if self.task == "activity" and self.frames_per_video % self.num_frames:
            raise ValueError(
                f"data.frames_per_video: expected a multiple of num_frames ({self.num_frames}), "
                f"got {self.frames_per_video}"
            )
        split_videos([], self.split)  # checks split is 1..4
        if self.synthetic is not None:
            self._set("synthetic", SyntheticBreakfastSpec(**self.synthetic))


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

    options_class = BreakfastOptions
    write_synthetic = staticmethod(ensure_synthetic_breakfast)
    options: BreakfastOptions

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.class_names: list[str] = []  # mapping.txt names, filled by setup()

    @property
    def num_classes(self) -> int:
        """Outputs of the task: sub-actions in mapping.txt (A) or the 10 activities (B)."""
        if self.options.task == "activity":
            return len(ACTIVITIES)
        if not self.class_names:
            self.class_names = read_mapping(self.path("mapping"))
        return len(self.class_names)

    def _annotation_files(self) -> dict[str, Path]:
        """Video name -> annotation file in the configured layout."""
        if self.options.annotation_format == "segmentation":
            return find_segmentation_files(self.path("segmentation_dir"))
        folder = self.path("groundtruth_dir")
        if not folder.is_dir():
            raise data_error(folder, "expected a folder of per-frame groundTruth files")
        return {p.stem: p for p in sorted(folder.glob(f"*{ANNOTATION_SUFFIX}"))}

    def _split(self, files: Mapping[str, Path]) -> dict[str, list[BreakfastVideo]]:
        """Train and test videos, from the bundles or by subject."""
        split = self.options.split
        if self.options.train_bundle is not None:
            train = check_bundle_split(self.path("train_bundle"), split, test=False)
            test = check_bundle_split(self.path("test_bundle"), split, test=True)
        else:
            videos = [parse_video_name(name, path) for name, path in files.items()]
            train, test = split_videos(videos, split)
        return {"train": train, "val": test}

    def _annotation(self, video: BreakfastVideo, files: Mapping[str, Path]) -> BreakfastAnnotation:
        """Segments of one video from its annotation file."""
        classes = {name: i for i, name in enumerate(self.class_names)}
        annotation_format = self.options.annotation_format
        if video.name not in files:
            folder = self.path(f"{annotation_format}_dir")
            raise data_error(folder, f"expected an annotation file for video {video.name}")
        path = files[video.name]
        reader = read_segmentation if annotation_format == "segmentation" else read_groundtruth
        return BreakfastAnnotation(video=video, segments=tuple(reader(path, classes)), path=path)

    def setup(self, stage: str | None = None) -> None:
        """Read mapping, splits and annotations and build the train/val datasets of the task."""
        if self.datasets:
            return
        options = self.options
        self.class_names = read_mapping(self.path("mapping"))
        files = self._annotation_files()
        video_dir = self.path("video_dir")
        patterns = (options.video_pattern, options.stereo_video_pattern)
        for split, videos in self._split(files).items():
            sources = {v.name: VideoFileSource(video_dir / v.video_path(*patterns)) for v in videos}
            sources, missing = self.keep_available(sources, "video file")
            self.count("videos without a video file (skipped)", len(missing))
            kept = [v for v in videos if v.name not in missing]
            common = self.dataset_options(train=split == "train")
            if options.task == "activity":
                self.datasets[split] = BreakfastActivityClips(
                    kept, sources=sources, frames_per_video=options.frames_per_video, **common
                )
                continue
            annotations = [self._annotation(v, files) for v in kept]
            self.datasets[split] = BreakfastSegments(
                annotations, sources=sources, sample_rate=options.sample_rate, **common
            )
        self.report()

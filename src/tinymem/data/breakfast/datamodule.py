"""The Breakfast DataModule: task A (sub-actions per segment) or B (activity per video)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinymem.data.breakfast.dataset import BreakfastActivityClips, BreakfastSegments
from tinymem.data.breakfast.formats import (
    ACTIVITIES,
    BreakfastAnnotation,
    BreakfastVideo,
    annotation_reader,
    find_annotation_files,
    read_mapping,
    split_sides,
    split_videos,
)
from tinymem.data.breakfast.synthetic import SyntheticBreakfastSpec, ensure_synthetic_breakfast
from tinymem.data.clip_datamodule import ClipDataModule, ClipOptions
from tinymem.data.frame_sources import VideoFileSource
from tinymem.errors import data_error

log = logging.getLogger(__name__)

BREAKFAST_TASKS = ("subaction", "activity")  # task A, task B
# Task B targets: the video's sub-actions (multi-label over mapping.txt, the paper's table 12)
# or its activity (single-label over the 10 activities).
ACTIVITY_TARGETS = ("actions", "activity")
BREAKFAST_FORMATS = ("groundtruth", "segmentation")  # per-frame files or raw segment files


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
    activity_target: str = "actions"  # task B: actions (multi-label, table 12) | activity (10)
    synthetic: SyntheticBreakfastSpec | None = None

    def __post_init__(self) -> None:
        """Check the task, format, bundles, split and task B's frame count; build the spec."""
        super().__post_init__()
        self._check_choice("task", BREAKFAST_TASKS)
        self._check_choice("activity_target", ACTIVITY_TARGETS)
        self._check_choice("annotation_format", BREAKFAST_FORMATS)
        if (self.train_bundle is None) != (self.test_bundle is None):
            raise ValueError("data.train_bundle / data.test_bundle: expected both set or both null")
        if self.task == "activity" and self.frames_per_video % self.num_frames:
            raise ValueError(
                f"data.frames_per_video: expected a multiple of num_frames ({self.num_frames}), "
                f"got {self.frames_per_video}"
            )
        split_videos([], self.split)  # checks split is 1..4
        self._build_synthetic(SyntheticBreakfastSpec)


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
        """Outputs: sub-actions in mapping.txt (A; B's actions) or the 10 activities (B)."""
        if self.options.task == "activity" and self.options.activity_target == "activity":
            return len(ACTIVITIES)
        if not self.class_names:
            self.class_names = read_mapping(self.path("mapping"))
        return len(self.class_names)

    def _annotation_files(self) -> dict[str, Path]:
        """Video name -> annotation file in the configured layout."""
        annotation_format = self.options.annotation_format
        folder = self.path(f"{annotation_format}_dir")
        found = find_annotation_files(annotation_format, folder)
        log.info("Breakfast %s: %s", folder, found.description)
        return found.files

    def _split(self, files: Mapping[str, Path]) -> dict[str, list[BreakfastVideo]]:
        """Train and test videos, from the bundles or by subject."""
        bundles = self.path("train_bundle"), self.path("test_bundle")
        train, test = split_sides(files, self.options.split, *bundles)
        return {"train": train, "val": test}

    def _annotation(self, video: BreakfastVideo, files: Mapping[str, Path]) -> BreakfastAnnotation:
        """Segments of one video from its annotation file."""
        classes = {name: i for i, name in enumerate(self.class_names)}
        annotation_format = self.options.annotation_format
        if video.name not in files:
            folder = self.path(f"{annotation_format}_dir")
            raise data_error(folder, f"expected an annotation file for video {video.name}")
        path = files[video.name]
        segments = annotation_reader(annotation_format)(path, classes)
        return BreakfastAnnotation(video=video, segments=tuple(segments), path=path)

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
            sources = {
                v.name: VideoFileSource(video_dir / v.video_path(*patterns), options.stream_decode)
                for v in videos
            }
            sources, missing = self.keep_available(sources, "video file")
            self.count("videos without a video file (skipped)", len(missing))
            kept = [v for v in videos if v.name not in missing]
            common = self.dataset_options(train=split == "train")
            if options.task == "activity":
                actions = None
                if options.activity_target == "actions":  # every sub-action of the video
                    annotations = (self._annotation(v, files) for v in kept)
                    actions = {a.video.name: {s.label for s in a.segments} for a in annotations}
                self.datasets[split] = BreakfastActivityClips(
                    kept,
                    sources=sources,
                    frames_per_video=options.frames_per_video,
                    actions=actions,
                    num_actions=len(self.class_names),
                    **common,
                )
                continue
            annotations = [self._annotation(v, files) for v in kept]
            self.datasets[split] = BreakfastSegments(
                annotations, sources=sources, sample_rate=options.sample_rate, **common
            )
        self.report()

"""The Epic-Kitchens-100 DataModule: one clip per action segment, verb and noun labels."""

from __future__ import annotations

import dataclasses

from tinymem.classes import EK100_NOUNS, EK100_VERBS
from tinymem.data.clip_datamodule import ClipDataModule, ClipOptions
from tinymem.data.epic_kitchens.dataset import EpicKitchensSegments
from tinymem.data.epic_kitchens.formats import EpicSegment, read_epic_annotations, read_video_info
from tinymem.data.epic_kitchens.synthetic import SyntheticEpicSpec, ensure_synthetic_epic
from tinymem.data.frame_sources import FrameSource, JpegFolderSource, VideoFileSource
from tinymem.errors import data_error

EPIC_SOURCES = ("frames", "video")  # JPEG frame folders or video files


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
        self._check_choice("source", EPIC_SOURCES)
        self._build_synthetic(SyntheticEpicSpec)


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
        path = media_dir / options.video_pattern.format(**fields)
        return VideoFileSource(path, stream=options.stream_decode)

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
                **self.dataset_options(train=split == "train"),
            )
        self.report()

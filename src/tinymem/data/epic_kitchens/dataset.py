"""Epic-Kitchens-100 clip dataset: one clip per action segment, streamed video by video.

Two media layouts, and how a segment is placed in each:

- frame folders (``<participant>/rgb_frames/<video_id>/frame_%010d.jpg``, numbered from 1, as
  the download scripts extract them and the EPIC SlowFast loader reads them): segments are
  placed by ``start_frame`` / ``stop_frame``. The release numbers these at 60 fps for every
  video (``start_frame / start_seconds`` is 60.0 even for the 29.97, 47.95 and 90 fps videos of
  ``EPIC_100_video_info.csv``), which is the numbering of the frame folders.
- video files (``<participant>/videos/<video_id>.MP4``, decoded with PyAV): segments are placed
  by ``start_timestamp`` / ``stop_timestamp`` at the file's own frame rate (frame
  ``round(seconds * fps)``), never by the frame numbers, which would land a 90 fps video's
  segment at two thirds of its time and run past the end of a 29.97 fps one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tinymem.data.clip_dataset import IGNORE_LABEL, StreamedClipDataset
from tinymem.data.epic_kitchens.formats import (
    EpicSegment,
    segment_frames,
    temporal_order,
)
from tinymem.data.frame_sources import FrameSource
from tinymem.data.video import clip_frame_indices
from tinymem.errors import data_error
from tinymem.paths import PathType


class EpicKitchensSegments(StreamedClipDataset):
    """One clip per action segment, streamed video by video in temporal order.

    The clip is ``num_frames`` frames ``sample_rate`` apart centred on the segment's middle
    frame, clamped to the video. A source that knows its frame rate (a video file) places the
    segment by its start/stop timestamps at that rate; a frame folder by its frame numbers
    (the release's 60 fps numbering). Labels: ``verb``, ``noun`` (class ids) and
    ``narration_id`` (for writing challenge-format results). ``clip_options``: those of
    :class:`~tinymem.data.clip_dataset.StreamedClipDataset` (captions, num_frames, ...).
    """

    label_defaults = {"verb": IGNORE_LABEL, "noun": IGNORE_LABEL, "narration_id": ""}

    def __init__(
        self,
        segments: Sequence[EpicSegment],
        annotation_file: PathType,
        sources: Mapping[str, FrameSource],
        sample_rate: int,
        **clip_options: Any,
    ) -> None:
        self.segments = temporal_order(segments)
        self.annotation_file = annotation_file
        self.sample_rate = sample_rate
        names = sorted({s.video_id for s in self.segments})
        position = {name: i for i, name in enumerate(names)}
        super().__init__(
            video_names=names,
            item_videos=[position[s.video_id] for s in self.segments],
            sources=sources,
            **clip_options,
        )

    def frame_indices(self, index: int) -> list[int]:
        """Clip frames centred in the segment, clamped to the video."""
        segment = self.segments[index]
        source = self.sources[segment.video_id]
        start, stop = segment_frames(segment, source.fps)
        total = source.num_frames
        if start >= total:
            where = "frame" if source.fps is None else f"{segment.start_sec:.2f} s, frame"
            raise data_error(
                self.annotation_file,
                f"segment {segment.narration_id} starts at {where} {start}, but {source} has "
                f"only {total} frames",
                segment.line,
            )
        center = (start + stop) // 2
        return clip_frame_indices(center, self.num_frames, self.sample_rate, total)

    def labels(self, index: int) -> dict[str, Any]:
        """Verb and noun class ids and the narration id."""
        segment = self.segments[index]
        return {
            "verb": segment.verb_class,
            "noun": segment.noun_class,
            "narration_id": segment.narration_id,
        }

"""Per-frame captions of videos, read lazily from one JSON-lines file per video."""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path

from tinymem.errors import data_error
from tinymem.text_files import read_text

logger = logging.getLogger(__name__)

CAPTION_SUFFIX = ".jsonl"
MISSING_CAPTION = ""  # documented fallback for every frame of a video without a caption file


class CaptionStore:
    """Per-frame captions of each video, read lazily from `<caption_dir>/<video_id>.jsonl`.

    Format (what ``python -m tinymem.tools.caption`` writes): one JSON object per line,
    ``{"frame": int, "caption": str}``, optionally with ``"video_id": str`` (which must then be
    the file's video id); ``frame`` is a 0-based frame index of the video file, at most one line
    per frame, in any order; blank lines are ignored. A caption may be ``""`` (the text encoder
    turns it into its empty-caption token).

    A frame without a line takes the caption of the nearest captioned frame (the earlier one on
    a tie), so captions extracted every k-th frame serve every frame; such lookups are counted in
    ``nearest_frames`` (exact ones in ``exact_frames``). A video without a file gets ``""`` for
    every frame, with one warning (``missing_videos``), or none with ``warn_missing=False``
    (the datamodules count the videos without a file once, at setup, instead of each data
    worker warning about each). Counters are per process (each data worker has its own store).
    """

    def __init__(self, caption_dir: str | PathLike[str], warn_missing: bool = True) -> None:
        self.caption_dir = Path(caption_dir)
        self.warn_missing = warn_missing
        # video_id -> (sorted captioned frames, their captions), or None when the file is missing
        self._cache: dict[str, tuple[list[int], list[str]] | None] = {}
        self.exact_frames = 0  # lookups answered by the frame's own line
        self.nearest_frames = 0  # lookups answered by the nearest captioned frame

    @property
    def missing_videos(self) -> set[str]:
        """Videos whose caption file was missing (each warned about once)."""
        return {video_id for video_id, entry in self._cache.items() if entry is None}

    def path(self, video_id: str) -> Path:
        """Caption file of a video."""
        return self.caption_dir / f"{video_id}{CAPTION_SUFFIX}"

    def preload(self, video_ids: Iterable[str]) -> None:
        """Parse the videos' caption files now, so a malformed one fails at setup, not mid-epoch."""
        for video_id in video_ids:
            self._load(video_id)

    def captions(self, video_id: str, frame_indices: Sequence[int]) -> list[str]:
        """Caption of each given frame: its own line, else the nearest captioned frame's."""
        entry = self._load(video_id)
        if entry is None:
            return [MISSING_CAPTION] * len(frame_indices)
        frames, texts = entry
        positions = [_nearest(frames, int(i)) for i in frame_indices]
        exact = sum(frames[p] == int(i) for p, i in zip(positions, frame_indices, strict=True))
        self.exact_frames += exact
        self.nearest_frames += len(positions) - exact
        return [texts[p] for p in positions]

    def _load(self, video_id: str) -> tuple[list[int], list[str]] | None:
        """Parse (once) a video's caption file; None (with one warning) when it is missing."""
        if video_id in self._cache:
            return self._cache[video_id]
        path = self.path(video_id)
        if not path.is_file():
            logger.log(
                logging.WARNING if self.warn_missing else logging.DEBUG,
                "no caption file %s: using empty captions for video %s",
                path,
                video_id,
            )
            self._cache[video_id] = None
            return None
        by_frame = read_caption_file(path, video_id)
        frames = sorted(by_frame)
        entry = (frames, [by_frame[f] for f in frames])
        self._cache[video_id] = entry
        return entry


def read_caption_file(path: str | PathLike[str], video_id: str | None = None) -> dict[int, str]:
    """Frame -> caption of one caption file (format: :class:`CaptionStore`).

    ``video_id`` defaults to the file name's stem; lines naming another video are an error.
    """
    path = Path(path)
    video_id = path.name.removesuffix(CAPTION_SUFFIX) if video_id is None else video_id
    by_frame: dict[int, str] = {}
    for line_number, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip():
            frame, caption = _parse_line(path, line_number, line, video_id)
            if frame in by_frame:
                raise data_error(
                    path, f"expected one line per frame, got frame {frame} again", line_number
                )
            by_frame[frame] = caption
    if not by_frame:
        raise data_error(path, 'expected at least one {"frame": int, "caption": str} line')
    return by_frame


def _parse_line(path: Path, line_number: int, line: str, video_id: str) -> tuple[int, str]:
    """Parse one ``{"frame": int, "caption": str[, "video_id": str]}`` line."""
    expected = 'expected a JSON object {"frame": int >= 0, "caption": str}'
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise data_error(path, f"{expected}, got invalid JSON ({e.msg})", line_number) from None
    if not isinstance(record, dict) or "frame" not in record or "caption" not in record:
        raise data_error(path, f"{expected}, got {line.strip()[:80]!r}", line_number)
    frame, caption = record["frame"], record["caption"]
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise data_error(path, f"{expected}, got frame {frame!r}", line_number)
    if not isinstance(caption, str):
        raise data_error(path, f"{expected}, got caption {caption!r}", line_number)
    if record.get("video_id", video_id) != video_id:
        raise data_error(
            path, f"expected video_id {video_id!r}, got {record['video_id']!r}", line_number
        )
    return frame, caption


def _nearest(frames: list[int], index: int) -> int:
    """Position in sorted ``frames`` of the frame nearest to ``index`` (earlier on a tie)."""
    after = bisect.bisect_left(frames, index)
    if after == 0:
        return 0
    if after == len(frames):
        return after - 1
    return after if frames[after] - index < index - frames[after - 1] else after - 1

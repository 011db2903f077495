"""Per-frame captions of videos, read lazily from one JSON-lines file per video."""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from tinymem.data.errors import data_error

logger = logging.getLogger(__name__)

CAPTION_SUFFIX = ".jsonl"
MISSING_CAPTION = ""  # documented fallback for every frame of a video without a caption file


class CaptionStore:
    """Per-frame captions of each video, read lazily from `<caption_dir>/<video_id>.jsonl`.

    Each line is ``{"frame": int, "caption": str}`` with a 0-based frame index of the video
    file. A frame without a line takes the caption of the nearest captioned frame (the earlier
    one on a tie). A video without a file gets ``""`` for every frame, with one warning.
    """

    def __init__(self, caption_dir: str | PathLike[str]) -> None:
        self.caption_dir = Path(caption_dir)
        # video_id -> (sorted captioned frames, their captions), or None when the file is missing
        self._cache: dict[str, tuple[list[int], list[str]] | None] = {}

    @property
    def missing_videos(self) -> set[str]:
        """Videos whose caption file was missing (each warned about once)."""
        return {video_id for video_id, entry in self._cache.items() if entry is None}

    def path(self, video_id: str) -> Path:
        """Caption file of a video."""
        return self.caption_dir / f"{video_id}{CAPTION_SUFFIX}"

    def captions(self, video_id: str, frame_indices: Sequence[int]) -> list[str]:
        """Caption of each given frame: its own line, else the nearest captioned frame's."""
        entry = self._load(video_id)
        if entry is None:
            return [MISSING_CAPTION] * len(frame_indices)
        frames, texts = entry
        return [texts[_nearest(frames, int(i))] for i in frame_indices]

    def _load(self, video_id: str) -> tuple[list[int], list[str]] | None:
        """Parse (once) a video's caption file; None (with one warning) when it is missing."""
        if video_id in self._cache:
            return self._cache[video_id]
        path = self.path(video_id)
        if not path.is_file():
            logger.warning("no caption file %s: using empty captions for video %s", path, video_id)
            self._cache[video_id] = None
            return None
        by_frame: dict[int, str] = {}
        with path.open() as f:
            for line_number, line in enumerate(f, start=1):
                if line.strip():
                    frame, caption = _parse_line(path, line_number, line)
                    if frame in by_frame:
                        raise data_error(
                            path,
                            f"expected one line per frame, got frame {frame} again",
                            line_number,
                        )
                    by_frame[frame] = caption
        if not by_frame:
            raise data_error(path, 'expected at least one {"frame": int, "caption": str} line')
        frames = sorted(by_frame)
        entry = (frames, [by_frame[f] for f in frames])
        self._cache[video_id] = entry
        return entry


def _parse_line(path: Path, line_number: int, line: str) -> tuple[int, str]:
    """Parse one ``{"frame": int, "caption": str}`` line."""
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
    return frame, caption


def _nearest(frames: list[int], index: int) -> int:
    """Position in sorted ``frames`` of the frame nearest to ``index`` (earlier on a tie)."""
    after = bisect.bisect_left(frames, index)
    if after == 0:
        return 0
    if after == len(frames):
        return after - 1
    return after if frames[after] - index < index - frames[after - 1] else after - 1

"""Where a video's frames come from: a video file (PyAV) or a folder of numbered JPEG files.

Both read 0-based frame indices, clamped to the video, and return uint8 [T, 3, H, W], often a
channels-last view of [T, H, W, 3] memory (the decoders' own layout; no copy to planar RGB).
A reader of clips in stream order passes the next clip's frames as ``upcoming``: a video file
then keeps decoding forward (:class:`tinymem.data.stream_decoder.StreamDecoder`).
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tinymem.data.stream_decoder import StreamDecoder
from tinymem.data.video import probe_video, read_frames
from tinymem.errors import data_error
from tinymem.paths import PathType


class FrameSource(ABC):
    """Frames of one video, indexed from 0."""

    @property
    @abstractmethod
    def num_frames(self) -> int:
        """Number of frames of the video."""

    @property
    def fps(self) -> float | None:
        """Frame rate of the source when it knows one (video files), else None."""
        return None

    @abstractmethod
    def exists(self) -> bool:
        """Whether the source's file or folder is there (checked cheaply, nothing decoded)."""

    @abstractmethod
    def read(
        self, indices: Sequence[int], upcoming: Sequence[int] = (), short_side: int | None = None
    ) -> torch.Tensor:
        """The given 0-based frames (clamped to the video), uint8 [T, 3, H, W].

        ``upcoming``: the frames the stream reads next (empty: its last read). ``short_side``:
        the smallest short side the caller resizes to; a source may decode smaller frames,
        never below it.
        """


class VideoFileSource(FrameSource):
    """Frames decoded from a video file with PyAV.

    ``stream`` (default): a :class:`StreamDecoder` that walks the file forward between reads
    of consecutive clips on one thread; False: :func:`tinymem.data.video.read_frames` per read
    (open, seek, decode on FFmpeg's threads: the per-clip path). Same pixels either way.
    """

    def __init__(self, path: PathType, stream: bool = True) -> None:
        self.path = Path(path)
        self.decoder = StreamDecoder(self.path) if stream else None

    def __repr__(self) -> str:
        return f"VideoFileSource({str(self.path)!r})"

    @cached_property
    def _info(self):
        """Probed once per process: frame rate, frame count, size."""
        return probe_video(self.path)

    @property
    def num_frames(self) -> int:
        """Frame count of the file's first video stream."""
        return self._info.num_frames

    @property
    def fps(self) -> float:
        """Frame rate of the file's first video stream."""
        return self._info.fps

    def exists(self) -> bool:
        """Whether the video file is there."""
        return self.path.is_file()

    def read(
        self, indices: Sequence[int], upcoming: Sequence[int] = (), short_side: int | None = None
    ) -> torch.Tensor:
        """Decode the frames (full size); DataFormatError naming a missing or broken file."""
        if self.decoder is None:
            frames = read_frames(self.path, indices)
        else:
            frames = self.decoder.read(indices, upcoming)
        return frames.permute(0, 3, 1, 2)  # [T, 3, H, W], channels-last


class JpegFolderSource(FrameSource):
    """Frames stored as one JPEG file per frame, numbered from ``first_number``.

    ``pattern`` is a ``str.format`` template relative to ``root`` with a ``{frame}`` field and
    any of ``fields`` (e.g. ``{participant_id}/rgb_frames/{video_id}/frame_{frame:010d}.jpg``);
    0-based frame ``i`` is the file numbered ``i + first_number``. The frame count is the
    number of files in the folder with the pattern's extension (frames are assumed contiguous
    from ``first_number``).
    """

    def __init__(
        self,
        root: PathType,
        pattern: str,
        fields: Mapping[str, str] | None = None,
        first_number: int = 1,
    ) -> None:
        if "{frame" not in pattern:
            raise ValueError(f"frame pattern {pattern!r}: expected a {{frame}} field")
        self.root = Path(root)
        self.pattern = pattern
        self.fields = dict(fields or {})
        self.first_number = first_number
        self.path(0)  # a field missing from `fields` fails here, not at the first read

    def __repr__(self) -> str:
        return f"JpegFolderSource({str(self.folder)!r})"

    def path(self, index: int) -> Path:
        """File of 0-based frame ``index``."""
        try:
            name = self.pattern.format(**self.fields, frame=index + self.first_number)
        except KeyError as e:
            raise ValueError(
                f"frame pattern {self.pattern!r}: unknown field {e}; known: "
                f"{sorted([*self.fields, 'frame'])}"
            ) from None
        return self.root / name

    @property
    def folder(self) -> Path:
        """Folder holding the frames."""
        return self.path(0).parent

    def exists(self) -> bool:
        """Whether the frame folder is there."""
        return self.folder.is_dir()

    @cached_property
    def num_frames(self) -> int:
        """Files in the folder with the frames' extension (counted once per process)."""
        if not self.exists():
            raise data_error(self.folder, "expected a folder of frame files, it does not exist")
        suffix = Path(self.pattern).suffix
        count = sum(1 for entry in os.scandir(self.folder) if entry.name.endswith(suffix))
        if count == 0:
            raise data_error(self.folder, f"expected frame files *{suffix}, found none")
        return count

    def read(
        self, indices: Sequence[int], upcoming: Sequence[int] = (), short_side: int | None = None
    ) -> torch.Tensor:
        """Decode the JPEG files; DataFormatError naming a missing or undecodable file.

        With ``short_side`` at most half the frames' short side, PIL decodes them at 1/2, 1/4
        or 1/8 size (JPEG DCT scaling, ``Image.draft``), never below ``short_side``.
        """
        if len(indices) == 0:
            raise ValueError("read needs at least one frame index")
        last = self.num_frames - 1
        decoded: dict[int, torch.Tensor] = {}
        for index in {min(max(int(i), 0), last) for i in indices}:
            path = self.path(index)
            if not path.is_file():
                raise data_error(path, f"expected the JPEG file of frame {index}, it is missing")
            try:
                decoded[index] = _decode_jpeg(path, short_side)
            except (RuntimeError, OSError) as e:
                raise data_error(path, f"expected a decodable JPEG file ({e})") from None
        frames = [decoded[min(max(int(i), 0), last)] for i in indices]
        return torch.stack(frames)  # [T, 3, H, W]


def _decode_jpeg(path: Path, short_side: int | None) -> torch.Tensor:
    """One JPEG as uint8 [3, H, W] (PIL), reduced by DCT scaling when short_side allows (draft)."""
    with Image.open(path) as image:
        width, height = image.size
        ratio = min(width, height) / short_side if short_side else 1.0  # target = size / ratio
        if ratio >= 2 and image.format == "JPEG":
            image.draft("RGB", (math.ceil(width / ratio), math.ceil(height / ratio)))
        array = np.array(image.convert("RGB"))  # [h, w, 3], writable
    return torch.from_numpy(array).permute(2, 0, 1)  # channels-last view

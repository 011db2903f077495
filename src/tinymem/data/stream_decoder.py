"""Stream-order decoding: walk a video file once, keep only the frames the next clips use.

A :class:`StreamDecoder` serves the clips of one video in time order (AVA: one clip per
keyframe second, windows overlapping by ~2 s). It keeps its container open between clips and
decodes forward from where the previous clip stopped, so each frame is decoded once per pass
instead of once per clip that seeks back to the keyframe before it. Only frames that the
current or the next clip uses are converted to RGB (once) and kept in a small buffer.

It reopens (seeks) only for its first clip, after a jump forward of more than ``max_skip``
frames, and when a clip asks for a frame it has already passed without keeping it (out of
order: random access still works, at the per-clip cost). The frames are those of
:func:`tinymem.data.video.read_frames` pixel for pixel: frame index ``i`` is the first frame,
in presentation order, whose timestamp maps to an index ``>= i`` (what a variable frame rate
skips is filled by the next frame), indices are clamped to the stream's frame count, and
indices past the last decodable frame repeat the clip's last decoded one. FFmpeg decodes on
one thread (``thread_count = 1``): the process is meant to be one of several, one per core.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction

import av
import numpy as np
import torch

from tinymem.data.video import _open, _stream_fps, read_frames
from tinymem.errors import data_error
from tinymem.paths import PathType

MAX_SKIP = 300  # frames decoded forward at most to reach a clip; a longer jump seeks instead


def upcoming_frames(clip: Sequence[int], later: Iterable[Sequence[int]]) -> list[int]:
    """Frames a decoder reading ``clip`` should keep for the clips after it (in stream order).

    Long windows overlap more than the next clip (16 frames every 4th at 30 fps: clip k + 2
    still uses frames of clip k), so this is every later clip up to and including the first
    that starts after ``clip`` ends (``later`` is read no further).
    """
    end, frames = max(clip), []
    for following in later:
        frames += following
        if min(following) > end:
            break
    return frames


class StreamDecoder:
    """One open video read clip by clip in time order; ``read`` any clip, in order is cheap.

    ``decoded`` counts the frames decoded and ``seeks`` the (re)openings, for tests and the
    bench.
    """

    def __init__(self, path: PathType, max_skip: int = MAX_SKIP) -> None:
        self.path = path
        self.max_skip = max_skip
        self.decoded = 0  # frames decoded so far (all passes)
        self.seeks = 0  # times the decoder started a walk (open, seek or restart)
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None  # the walk's decode iterator
        self._reached = -1  # every index <= this one is assigned its frame (or was skipped)
        self._ended = False  # the walk reached the end of the stream
        self._buffer: dict[int, np.ndarray] = {}  # frame index -> RGB [H, W, 3], kept frames

    def close(self) -> None:
        """Close the file and drop the buffered frames (the next ``read`` reopens)."""
        if self._container is not None:
            self._container.close()
        self._container, self._frames, self._buffer = None, None, {}
        self._reached, self._ended = -1, False

    def __getstate__(self) -> dict:
        """Pickle (worker processes) without the open file: the copy reopens when read."""
        state = self.__dict__.copy()
        state.update(_container=None, _frames=None, _buffer={}, _reached=-1, _ended=False)
        return state

    def _ensure_open(self) -> None:
        """Open the file and set up single-threaded decoding of its first video stream."""
        if self._container is not None:
            return
        self._container = _open(self.path)
        self._stream = self._container.streams.video[0]
        self._stream.codec_context.thread_count = 1
        self._fps = _stream_fps(self.path, self._stream)
        self._start_pts = self._stream.start_time or 0
        frames = self._stream.frames
        self.last_index = frames - 1 if frames > 0 else None  # None: clamp to each request

    def _start_walk(self, first: int) -> None:
        """Seek to the keyframe before frame ``first`` (as read_frames does) and walk from it.

        When the seek lands after ``first``, the walk restarts from the beginning of the file.
        """
        assert self._container is not None
        self.seeks += 1
        self._ended = False
        if first > 0:
            target = self._start_pts + int(Fraction(first) / self._fps / self._stream.time_base)
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
            self._frames = self._container.decode(self._stream)
            head = next(self._frames, None)
            if head is not None and self._index(head) <= first:
                self._reached = first - 1  # frames before `first` are not assigned
                self._assign(head)
                return
        self._container.seek(0)
        self._frames = self._container.decode(self._stream)
        self._reached = -1

    def _index(self, frame: av.VideoFrame) -> int:
        """Frame index of a decoded frame from its presentation timestamp (read_frames' rule)."""
        if frame.pts is None:
            raise data_error(self.path, "expected frames with presentation timestamps")
        return round((frame.pts - self._start_pts) * self._stream.time_base * self._fps)

    def _assign(self, frame: av.VideoFrame) -> None:
        """Give ``frame`` to the indices it covers (after the last reached), keep the needed."""
        self.decoded += 1
        index = self._index(frame)
        covered = [i for i in self._needed if self._reached < i <= index]
        if covered:
            image = frame.to_ndarray(format="rgb24")  # [H, W, 3], converted once
            for i in covered:
                self._buffer[i] = image
        self._reached = max(self._reached, index)

    def _walk_to(self, last: int) -> None:
        """Decode forward until frame ``last`` is reached or the stream ends."""
        assert self._frames is not None
        try:
            while self._reached < last:
                frame = next(self._frames, None)
                if frame is None:
                    self._ended = True
                    return
                self._assign(frame)
        except av.FFmpegError as e:
            raise data_error(self.path, f"expected a decodable video stream ({e})") from None

    def _clamp(self, indices: Sequence[int], last: int) -> list[int]:
        return [min(max(int(i), 0), max(last, 0)) for i in indices]

    def read(self, indices: Sequence[int], upcoming: Sequence[int] = ()) -> torch.Tensor:
        """The given frames (any order, repeats, clamped), uint8 [T, H, W, 3].

        ``upcoming`` are the frames the stream's next clips use (:func:`upcoming_frames`): they
        are kept when decoded on the way; all other buffered frames are dropped after this
        read. Without ``upcoming`` (the stream's last clip) the file is closed.
        """
        if len(indices) == 0:
            raise ValueError("read needs at least one frame index")
        try:
            self._ensure_open()
        except BaseException:
            self.close()
            raise
        last = self.last_index if self.last_index is not None else max(indices)
        clamped = self._clamp(indices, last)
        wanted = sorted(set(clamped))
        keep = set(self._clamp(upcoming, last))
        self._needed = sorted(set(wanted) | keep)
        missing = [i for i in wanted if i not in self._buffer]
        if missing and (
            self._frames is None
            or missing[0] <= self._reached
            or missing[0] - self._reached > self.max_skip
        ):
            self._buffer = {i: self._buffer[i] for i in wanted if i in self._buffer}
            try:
                self._start_walk(missing[0])
            except av.FFmpegError as e:
                self.close()
                raise data_error(self.path, f"expected a decodable video stream ({e})") from None
        if missing:
            self._walk_to(wanted[-1])
        got = [i for i in wanted if i in self._buffer]
        if not got:  # nothing decodable at these indices: read_frames' own error path
            self.close()
            return read_frames(self.path, indices)
        fill = self._buffer[got[-1]]  # past the last decodable frame: the clip's last frame
        clip = torch.from_numpy(np.stack([self._buffer.get(i, fill) for i in clamped]))
        self._buffer = {i: image for i, image in self._buffer.items() if i in keep}
        if not upcoming:
            self.close()
        return clip  # [T, H, W, 3]


__all__ = ["MAX_SKIP", "StreamDecoder", "upcoming_frames"]

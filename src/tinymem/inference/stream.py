"""Bounded-memory streaming decode of a video into one clip per second, centred on keyframes.

Second ``t`` of a video has its keyframe at file time ``t`` seconds. Its clip is the model's
``num_frames`` frames every ``sample_rate`` frames (at ``fps``, the training videos' frame rate,
or the video's own) centred on the keyframe and clamped to the video, as the datamodule's AVA
clips are. Frames are decoded once, in order; only the frames the next clip (and, for
rendering, the current second) still needs are kept.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch
from torch import Tensor

from tinymem.data.ava.dataset import VIDEO_EXTENSIONS
from tinymem.data.video import VideoInfo, clip_frame_indices, probe_video
from tinymem.errors import DataFormatError, data_error
from tinymem.paths import PathType

TIME_EPS = 1e-6  # seconds: tolerance when comparing frame times
HALF_SECOND = 0.5  # frames at file time [t - 0.5, t + 0.5) are shown for second t


class VideoTooShortError(DataFormatError):
    """A video with fewer frames than one clip spans."""


@dataclass
class SecondClip:
    """What the predictor needs for one second of video time."""

    second: int  # t: the keyframe is at file time t seconds
    frame_ids: list[int]  # native frame index of each clip frame (caption lookup)
    frames: Tensor  # uint8 [T, H, W, 3]: the clip, sampled at the stream's fps, clamped
    keyframe: Tensor  # uint8 [H, W, 3]: the frame shown at time t (person detector input)
    display: list[np.ndarray] = field(default_factory=list)  # [H, W, 3] frames shown for t


@dataclass
class StreamStatus:
    """How far a stream got and why it ended."""

    expected_frames: int  # frame count the file's header announces
    fps: float  # native frame rate
    frames_decoded: int = 0
    seconds: int = 0  # seconds (clips) emitted
    last_time: float = 0.0  # file time of the last decoded frame, seconds
    error: str | None = None  # the decoder error that stopped the stream, if any

    @property
    def stopped_early(self) -> bool:
        """Whether decoding ended before the frames the header announces."""
        return self.error is not None or self.frames_decoded < self.expected_frames

    def describe(self) -> str:
        """Where decoding stopped, for the report."""
        if not self.stopped_early:
            return f"complete ({self.frames_decoded} frames, {self.seconds} s)"
        why = self.error or "the file ends early (truncated?)"
        done = f"seconds 0..{self.seconds - 1} were formed" if self.seconds else "no second formed"
        return (
            f"stopped at frame {self.frames_decoded} of {self.expected_frames} "
            f"(file time {self.last_time:.2f} s of {self.expected_frames / self.fps:.2f} s): "
            f"{why}; {done}"
        )


def list_videos(path: PathType) -> list[Path]:
    """The video file at `path`, or the video files (common extensions) in folder `path`."""
    path = Path(path)
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
        if not videos:
            raise data_error(path, f"expected video files ({', '.join(VIDEO_EXTENSIONS)})")
        return videos
    if not path.is_file():
        raise data_error(path, "expected a video file or a folder of videos, found nothing")
    return [path]


class VideoSeconds:
    """Iterate a video's seconds as `SecondClip`s, decoding it once with bounded memory.

    `fps` resamples the video (nearest earlier frame) to the training videos' frame rate so
    that `sample_rate` means the same as in training; None keeps the video's own rate. A decoder
    error or an early end of file stops the iteration after the last second it can still form;
    `status` says where. Raises `VideoTooShortError` when the video is shorter than one clip.
    """

    def __init__(
        self,
        path: PathType,
        num_frames: int,
        sample_rate: int,
        fps: float | None = None,
        keep_display: bool = False,
    ) -> None:
        self.path = Path(path)
        self.info: VideoInfo = probe_video(self.path)
        self.num_frames = num_frames
        self.sample_rate = sample_rate
        self.fps = float(fps) if fps else self.info.fps
        self.keep_display = keep_display
        self.status = StreamStatus(expected_frames=self.info.num_frames, fps=self.info.fps)
        span = num_frames * sample_rate  # clip length in frames at self.fps
        duration = self.info.num_frames / self.info.fps
        if duration * self.fps < span - TIME_EPS:
            raise VideoTooShortError(
                f"{self.path}: the video is shorter than one clip: {self.info.num_frames} frames "
                f"({duration:.2f} s at {self.info.fps:g} fps), but the model reads {num_frames} "
                f"frames x sample rate {sample_rate} = {span} frames ({span / self.fps:.2f} s at "
                f"{self.fps:g} fps)"
            )
        self.expected_seconds = max(1, math.ceil(duration - TIME_EPS))

    def clip_times(self, second: int) -> list[float]:
        """File times (s) of the clip frames of `second`, centred on it (clamped at 0)."""
        center = round(second * self.fps)
        span = self.num_frames * self.sample_rate
        ids = clip_frame_indices(center, self.num_frames, self.sample_rate, center + span + 1)
        return [i / self.fps for i in ids]

    def __iter__(self) -> Iterator[SecondClip]:
        """Decode in order and yield each second as soon as its frames are in."""
        try:
            container = av.open(str(self.path))
        except av.FFmpegError as e:
            raise data_error(self.path, f"expected a decodable video file ({e})") from None
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start = stream.start_time or 0
            buffer: deque[tuple[float, int, np.ndarray]] = deque()  # (time, frame id, image)
            display: dict[int, list[np.ndarray]] = {}  # second -> its frames (render)
            second = 0
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames, None)
                except av.FFmpegError as e:
                    self.status.error = f"{type(e).__name__}: {e}"
                    break
                if frame is None:
                    break
                if frame.pts is None:
                    time = self.status.frames_decoded / self.info.fps
                else:
                    time = float((frame.pts - start) * stream.time_base)
                image = frame.to_ndarray(format="rgb24")  # [H, W, 3]
                buffer.append((time, round(time * self.info.fps), image))
                if self.keep_display:
                    display.setdefault(math.floor(time + HALF_SECOND + TIME_EPS), []).append(image)
                self.status.frames_decoded += 1
                self.status.last_time = time
                while time >= self._ready_time(second) - TIME_EPS:
                    yield self._emit(second, buffer, display, last=False)
                    second += 1
            end = self.status.last_time + 1.0 / self.info.fps  # the decoded duration
            while buffer and second < end - TIME_EPS:
                last = second + 1 >= end - TIME_EPS
                yield self._emit(second, buffer, display, last=last)
                second += 1

    def _ready_time(self, second: int) -> float:
        """File time a decoded frame must pass before `second` can be formed.

        Its clip frames and the frames shown for it must be in, and a later second must be
        known to exist (a frame after ``second + 1 - 1/fps``), since the last second also shows
        the frames after its half-second boundary.
        """
        proof = second + 1 - 1.0 / self.info.fps + 2 * TIME_EPS
        return max(self.clip_times(second)[-1], second + HALF_SECOND, proof)

    def _emit(
        self,
        second: int,
        buffer: deque[tuple[float, int, np.ndarray]],
        display: dict[int, list[np.ndarray]],
        last: bool,
    ) -> SecondClip:
        """Form `second`'s clip from the buffer, then drop frames no later second needs."""
        picks = [_latest_at(buffer, t) for t in self.clip_times(second)]
        key = _latest_at(buffer, float(second))
        shown = display.pop(second, [])
        if last:  # frames after the last second's half-second boundary are shown with it
            for later in sorted(s for s in display if s > second):
                shown += display.pop(later)
        self.status.seconds = second + 1
        clip = SecondClip(
            second=second,
            frame_ids=[buffer[i][1] for i in picks],
            frames=torch.from_numpy(np.stack([buffer[i][2] for i in picks])),
            keyframe=torch.from_numpy(buffer[key][2]),
            display=shown,
        )
        earliest = self.clip_times(second + 1)[0]
        while len(buffer) > 1 and buffer[1][0] <= earliest + TIME_EPS:
            buffer.popleft()
        return clip


def _latest_at(buffer: deque[tuple[float, int, np.ndarray]], time: float) -> int:
    """Position of the latest buffered frame at or before `time` (the first one if none is)."""
    best = 0
    for position, (frame_time, _, _) in enumerate(buffer):
        if frame_time > time + TIME_EPS:
            break
        best = position
    return best


__all__ = ["SecondClip", "StreamStatus", "VideoSeconds", "VideoTooShortError", "list_videos"]

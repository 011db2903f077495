"""Video decoding and encoding with PyAV, and AVA-style clip frame indices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from tinymem.errors import data_error
from tinymem.paths import PathType

CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"
# qp 0 is lossless in YUV: decoded frames depend only on their own input frame, never on the
# content of neighbouring frames (no quantization drift), so colours survive up to RGB<->YUV.
ENCODER_OPTIONS = {"qp": "0", "preset": "veryfast"}
RGB_CHANNELS = 3


@dataclass
class VideoInfo:
    """Basic properties of a video file's first video stream."""

    fps: float
    num_frames: int
    width: int
    height: int


MP4_SUFFIXES = (".mp4", ".m4v", ".mov")
MP4_BOX_HEADER = 8  # 32-bit size + 4-byte type


def _open(path: PathType) -> av.container.InputContainer:
    """Open a video file, raising DataFormatError naming the file when missing or unreadable."""
    if not Path(path).is_file():
        raise data_error(path, "expected a video file, but it does not exist")
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise data_error(
            path, f"expected a decodable video file ({e}){_index_hint(path)}"
        ) from None
    if not container.streams.video:
        container.close()
        raise data_error(path, "expected a video stream, found none")
    return container


def _mp4_index_missing(path: PathType) -> bool:
    """Whether an MP4/MOV file has its media data but no index ('moov' box): cut short.

    Walks the top-level boxes by their headers only (no decoding, no full read).
    """
    size_on_disk = Path(path).stat().st_size
    boxes = set()
    with open(path, "rb") as f:
        offset = 0
        while offset + MP4_BOX_HEADER <= size_on_disk:
            f.seek(offset)
            header = f.read(MP4_BOX_HEADER)
            size, kind = int.from_bytes(header[:4], "big"), header[4:]
            if size == 1:  # 64-bit size follows the type
                size = int.from_bytes(f.read(8), "big")
            boxes.add(kind)
            if size < MP4_BOX_HEADER:  # 0: the box runs to the end of the file
                break
            offset += size
    return b"ftyp" in boxes and b"moov" not in boxes


def _index_hint(path: PathType) -> str:
    """What to do about an MP4 whose index is missing (empty when that is not the problem)."""
    if Path(path).suffix.lower() not in MP4_SUFFIXES or not _mp4_index_missing(path):
        return ""
    return (
        "; its index (the MP4 'moov' box, written at the end) is missing: the file was cut "
        "short (an interrupted copy, download or recording). Copy the complete file again; to "
        "make cut copies playable up to the cut, re-mux the original with the index first: "
        "ffmpeg -i in.mp4 -c copy -movflags +faststart out.mp4"
    )


def _stream_fps(path: PathType, stream: av.video.stream.VideoStream) -> Fraction:
    """Frame rate of a stream (average rate, else the guessed rate)."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise data_error(path, "expected a video stream with a frame rate")
    return Fraction(rate)


def probe_video(path: PathType) -> VideoInfo:
    """Frame rate, frame count and size of a video; decodes one frame to check it is readable."""
    container = _open(path)
    with container:
        stream = container.streams.video[0]
        fps = _stream_fps(path, stream)
        try:
            first = next(container.decode(stream), None)
            if first is None:
                raise data_error(path, "expected at least one decodable frame, found none")
            num_frames = stream.frames
            if num_frames <= 0:  # container without a frame count: count packets
                container.seek(0)
                num_frames = sum(1 for p in container.demux(stream) if p.size)
        except av.FFmpegError as e:
            raise data_error(path, f"expected a decodable video stream ({e})") from None
        return VideoInfo(
            fps=float(fps), num_frames=num_frames, width=first.width, height=first.height
        )


def read_frames(path: PathType, indices: Sequence[int]) -> torch.Tensor:
    """Decode the given 0-based frames (any order, repeats allowed, clamped to the video).

    Seeks to the keyframe before min(indices) and decodes forward to max(indices); decoded frames
    are mapped to indices by their presentation timestamp. Returns uint8 [T, H, W, 3].
    """
    if len(indices) == 0:
        raise ValueError("read_frames needs at least one frame index")
    container = _open(path)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = _stream_fps(path, stream)
        last = stream.frames - 1 if stream.frames > 0 else max(indices)
        wanted = sorted({min(max(int(i), 0), max(last, 0)) for i in indices})
        try:
            frames = _decode_range(path, container, stream, fps, wanted)
            if wanted[0] not in frames:  # seek landed after the first wanted frame: restart
                container.seek(0)
                frames = _decode_range(path, container, stream, fps, wanted, seek=False)
        except av.FFmpegError as e:
            raise data_error(path, f"expected a decodable video stream ({e})") from None
        if not frames:
            raise data_error(path, "expected decodable frames, found none")
        filled = _fill_missing(frames, wanted)
    clamped = [min(max(int(i), 0), max(last, 0)) for i in indices]
    return torch.from_numpy(np.stack([filled[i] for i in clamped]))  # [T, H, W, 3]


def _decode_range(
    path: PathType,
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    fps: Fraction,
    wanted: list[int],
    seek: bool = True,
) -> dict[int, np.ndarray]:
    """Decode frames from (a seek near) wanted[0] to wanted[-1]; frame index -> [H, W, 3]."""
    time_base = stream.time_base
    start_pts = stream.start_time or 0
    if seek and wanted[0] > 0:
        target = start_pts + int(Fraction(wanted[0]) / fps / time_base)
        container.seek(target, stream=stream, backward=True, any_frame=False)
    frames: dict[int, np.ndarray] = {}
    next_wanted = 0  # position in wanted of the first index without a frame yet
    for position, frame in enumerate(container.decode(stream)):
        if frame.pts is None:
            raise data_error(path, "expected frames with presentation timestamps")
        index = round((frame.pts - start_pts) * time_base * fps)
        if seek and position == 0 and index > wanted[0]:
            return {}  # the seek overshot; the caller decodes from the start
        if index < wanted[next_wanted]:
            continue
        # a frame stands in for wanted indices it skipped over (variable frame rate, drops)
        image = frame.to_ndarray(format="rgb24")  # [H, W, 3]
        while next_wanted < len(wanted) and wanted[next_wanted] <= index:
            frames[wanted[next_wanted]] = image
            next_wanted += 1
        if next_wanted == len(wanted):
            break
    return frames


def _fill_missing(frames: dict[int, np.ndarray], wanted: list[int]) -> dict[int, np.ndarray]:
    """Give wanted indices past the last decodable frame the last decoded frame."""
    last_image = frames[max(frames)]
    return {w: frames.get(w, last_image) for w in wanted}


class VideoWriter:
    """Streaming H.264 (yuv420p) encoder of uint8 [H, W, 3] RGB frames at a fixed frame rate.

    ``with VideoWriter(path, fps, width, height) as writer: writer.write(image)``; frame ``i``
    gets presentation time ``i / fps``. ``options`` are libx264 options (default lossless).
    """

    def __init__(
        self,
        path: PathType,
        fps: int,
        width: int,
        height: int,
        options: dict[str, str] | None = None,
    ) -> None:
        if height % 2 or width % 2 or height <= 0 or width <= 0:
            raise ValueError(f"expected a positive even height and width, got {height}x{width}")
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream(
            CODEC, rate=fps, options=ENCODER_OPTIONS if options is None else options
        )
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, PIXEL_FORMAT
        self.stream.codec_context.time_base = Fraction(1, fps)
        self.count = 0  # frames written

    def __enter__(self) -> VideoWriter:
        return self

    def write(self, image: np.ndarray) -> None:
        """Encode one uint8 [H, W, 3] RGB frame."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = self.count
        self.container.mux(self.stream.encode(frame))
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.container.mux(self.stream.encode(None))  # flush the encoder
        finally:
            self.container.close()


def write_video(path: PathType, frames: torch.Tensor | np.ndarray, fps: int) -> None:
    """Encode uint8 [T, H, W, 3] RGB frames (H, W even) as a lossless H.264 MP4 file."""
    array = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != RGB_CHANNELS:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {array.dtype} {array.shape}")
    num_frames, height, width, _ = array.shape
    if num_frames == 0 or height % 2 or width % 2:
        raise ValueError(f"expected at least one frame of even height and width, got {array.shape}")
    with VideoWriter(path, fps, width, height) as writer:
        for image in array:
            writer.write(image)


def clip_frame_indices(center: int, num_frames: int, rate: int, total_frames: int) -> list[int]:
    """Frames ``range(center - L//2, center + L//2, rate)``, L = num_frames * rate, clamped."""
    if num_frames <= 0 or rate <= 0 or total_frames <= 0:
        raise ValueError(
            f"expected positive num_frames, rate, total_frames, got {num_frames}, {rate}, "
            f"{total_frames}"
        )
    length = num_frames * rate  # L; for even L this is range(c - L//2, c + L//2, rate)
    start = center - length // 2
    return [min(max(i, 0), total_frames - 1) for i in range(start, start + length, rate)]


__all__ = [
    "VideoInfo",
    "VideoWriter",
    "clip_frame_indices",
    "probe_video",
    "read_frames",
    "write_video",
]

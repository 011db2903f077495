"""Cut AVA videos and extract 30 fps JPEG frames: ``python -m tinymem.tools.prepare_ava``.

``python -m tinymem.tools.prepare_ava videos=DIR out=DIR [splits=train:FILE,val:FILE] ...``

Each raw video ``<videos>/<video_id>.{mp4,mkv,webm,avi}`` is decoded with PyAV from second
``start_sec`` (900) to ``end_sec`` (1801, exclusive) and resampled to ``fps`` (30): output
frame ``k`` (time ``start_sec + k / fps``) shows the last decoded frame whose timestamp rounds
to frame ``k`` or earlier (frames are repeated or dropped as needed, like ffmpeg's ``-r``).
Output under ``out`` (the public layout, :mod:`tinymem.data.ava.frames`)::

    frames/<video_id>/<video_id>_%06d.jpg   1-based, JPEG quality ``quality``
    frame_lists/<split>.csv                 the space-separated frame list of each split
    videos_15min/<video_id>.mp4             with cut_videos=true: the same frames as H.264

``splits`` names, per split, an annotation CSV (its video ids are the split's videos) or a text
file with one video id (or file name) per line; without it every video in ``videos`` is taken
and the list is ``frame_lists/all.csv``. A video's frames are written into a temporary folder
renamed when complete, so an interrupted run resumes (finished videos are reused unless
``overwrite=true``). Annotated videos without a file, and videos that cannot be decoded, are
reported and left out of the frame lists; the exit status is then 1.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tinymem.data.ava.dataset import VIDEO_EXTENSIONS, find_video
from tinymem.data.ava.formats import read_annotation_rows
from tinymem.data.ava.frames import (
    AVA_END_SEC,
    AVA_FPS,
    AVA_START_SEC,
    FRAME_PATTERN,
    frame_file,
    write_frame_list,
)
from tinymem.data.video import VideoWriter
from tinymem.errors import DataFormatError, data_error
from tinymem.text_files import read_text
from tinymem.tools.args import parse_key_values, usage

logger = logging.getLogger(__name__)

FRAMES_DIR = "frames"
LISTS_DIR = "frame_lists"
CUT_DIR = "videos_15min"
ALL_SPLIT = "all"
PARTIAL_SUFFIX = ".partial"
CUT_OPTIONS = {"crf": "18", "preset": "veryfast"}  # near-lossless, much smaller than qp 0


@dataclass(frozen=True)
class PrepareArgs:
    """Arguments of the tool."""

    videos: str  # folder of the raw videos, <video_id>.<ext>
    out: str  # root of the prepared layout
    splits: str | None = None  # name:file,name:file (annotation CSV or list of video ids)
    start_sec: int = AVA_START_SEC
    end_sec: int = AVA_END_SEC  # exclusive
    fps: int = AVA_FPS
    quality: int = 90  # JPEG quality
    cut_videos: bool = False  # also write videos_15min/<video_id>.mp4
    workers: int = 1  # videos processed in parallel
    overwrite: bool = False  # redo videos whose frame folder exists

    def __post_init__(self) -> None:
        """Check the ranges; messages name the key."""
        if not 0 <= self.start_sec < self.end_sec:
            raise ValueError(f"end_sec: expected > start_sec >= 0, got {self.end_sec}")
        for name, low, high in (("fps", 1, 1000), ("quality", 1, 100), ("workers", 1, 1024)):
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name}: expected {low}..{high}, got {getattr(self, name)}")


def split_videos(path: Path) -> list[str]:
    """Video ids of a split file: an annotation CSV, or one id (or file name) per line."""
    if path.suffix == ".csv":
        return list(dict.fromkeys(video for video, _ in read_annotation_rows(path).keyframes))
    names = [line.strip() for line in read_text(path).splitlines() if line.strip()]
    return list(dict.fromkeys(n[: -len(Path(n).suffix)] if Path(n).suffix else n for n in names))


def resampled_frames(
    path: Path, start_sec: int, end_sec: int, fps: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (output frame index, uint8 [H, W, 3]) of seconds [start, end) resampled to fps.

    Frame ``k`` is the last decoded frame whose time, rounded to the output grid, is <= k (the
    first frame at or after the start also stands in for any earlier missing slots). Stops at
    ``end_sec`` or after the last frame's own slot.
    """
    total = (end_sec - start_sec) * fps
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise data_error(path, "expected a video stream, found none")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = stream.start_time or 0
        container.seek(origin + int(start_sec / stream.time_base), stream=stream, backward=True)
        previous, written, slot = None, 0, -1
        for frame in container.decode(stream):
            if frame.pts is None:
                raise data_error(path, "expected frames with presentation timestamps")
            slot = round((Fraction(frame.pts - origin) * stream.time_base - start_sec) * fps)
            image = frame.to_ndarray(format="rgb24")
            while written < min(slot, total):  # slots before this frame show the previous one
                yield written, image if previous is None else previous
                written += 1
            if slot >= total:
                return
            previous = image
        if previous is None or slot < 0:
            raise data_error(path, f"expected frames after second {start_sec}, found none")
        yield written, previous  # the last frame's own slot


def extract_video(path: Path, video_id: str, args: PrepareArgs) -> int:
    """Write one video's frames (and cut video); returns its frame count.

    Frames go to a temporary folder renamed when complete; a complete folder is reused unless
    ``args.overwrite``.
    """
    out = Path(args.out)
    final = out / FRAMES_DIR / video_id
    if final.is_dir() and not args.overwrite:
        return sum(1 for e in os.scandir(final) if e.name.endswith(Path(FRAME_PATTERN).suffix))
    partial = final.with_name(video_id + PARTIAL_SUFFIX)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    count = 0
    with ExitStack() as stack:
        writer = None
        try:
            for index, image in resampled_frames(path, args.start_sec, args.end_sec, args.fps):
                frame = partial / Path(frame_file(video_id, index)).name
                Image.fromarray(image).save(frame, quality=args.quality)  # [H, W, 3] uint8
                if args.cut_videos and writer is None:
                    writer = stack.enter_context(_cut_writer(out, video_id, image, args.fps))
                if writer is not None:
                    writer.write(image[: writer.stream.height, : writer.stream.width])
                count += 1
        except av.FFmpegError as e:
            raise data_error(path, f"expected a decodable video ({e})") from None
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return count


def _cut_writer(out: Path, video_id: str, image: np.ndarray, fps: int) -> VideoWriter:
    """Encoder of videos_15min/<video_id>.mp4 for frames like ``image`` (cropped to even size)."""
    (out / CUT_DIR).mkdir(parents=True, exist_ok=True)
    height, width = image.shape[:2]
    return VideoWriter(
        out / CUT_DIR / f"{video_id}.mp4", fps, width - width % 2, height - height % 2, CUT_OPTIONS
    )


def _extract(job: tuple[Path, str, PrepareArgs]) -> tuple[str, int | str]:
    """Worker: (video_id, frame count) or (video_id, error message)."""
    path, video_id, args = job
    try:
        return video_id, extract_video(path, video_id, args)
    except DataFormatError as e:
        return video_id, str(e)


def prepare(args: PrepareArgs) -> dict[str, int]:
    """Extract every split's videos and write the frame lists; returns counts by what happened."""
    videos = Path(args.videos)
    if args.splits is None:
        found = sorted(p for p in videos.iterdir() if p.suffix in VIDEO_EXTENSIONS)
        splits = {ALL_SPLIT: [p.stem for p in found]}
    else:
        splits = {}
        for item in args.splits.split(","):
            name, sep, file = item.partition(":")
            if not sep or not name or not file:
                raise ValueError(f"splits: expected name:file entries, got {item!r}")
            splits[name] = split_videos(Path(file))
    counts = {"videos extracted": 0, "videos without a file": 0, "videos that failed": 0}
    paths: dict[str, Path] = {}
    for video_id in dict.fromkeys(v for ids in splits.values() for v in ids):
        try:
            paths[video_id] = find_video(videos, video_id)
        except DataFormatError as e:
            counts["videos without a file"] += 1
            logger.error("%s", e)
    jobs = [(path, video_id, args) for video_id, path in paths.items()]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            results = dict(pool.map(_extract, jobs))
    else:
        results = dict(map(_extract, jobs))
    frames = {}
    for video_id, result in results.items():
        if isinstance(result, str):
            counts["videos that failed"] += 1
            logger.error("%s", result)
        else:
            frames[video_id] = result
            counts["videos extracted"] += 1
    (Path(args.out) / LISTS_DIR).mkdir(parents=True, exist_ok=True)
    for name, ids in splits.items():
        listed = {v: frames[v] for v in ids if v in frames}
        write_frame_list(Path(args.out) / LISTS_DIR / f"{name}.csv", listed)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; exit status 0, 1 if any video is missing or failed, 2 for bad arguments."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        args = parse_key_values(sys.argv[1:] if argv is None else argv, PrepareArgs)
    except ValueError as e:
        print(f"prepare_ava: {e}\n{usage(PrepareArgs, 'prepare_ava')}", file=sys.stderr)
        return 2
    counts = prepare(args)
    for what, count in counts.items():
        print(f"{what}: {count}")
    return 1 if counts["videos without a file"] or counts["videos that failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The doctor's checks of the videos or frame folders: present, decodable, long enough, frame
rate, disk use and decode time per epoch."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tinymem.data.frame_sources import FrameSource, JpegFolderSource, VideoFileSource
from tinymem.data.video import clip_frame_indices
from tinymem.doctor.report import Report, split_location
from tinymem.errors import DataFormatError

GIB = 1024**3
SECONDS_PER_HOUR = 3600
FPS_TOLERANCE = 0.01  # relative frame-rate difference reported as a mismatch
TIMED_CLIPS = 3  # clips decoded to estimate the decode time
CLAMPED = "end before an annotation does (clips clamped)"  # the warning on short video ends


@dataclass(frozen=True)
class MediaNeed:
    """What the annotations need from one video's frames.

    ``last_start`` must lie inside the video (else the dataset fails on that item: an error);
    ``last_stop`` should (else its clips are clamped: a warning). Both are frames (``unit``
    ``frame``) or seconds (``second``, converted with the source's frame rate).
    """

    source: FrameSource
    last_start: float
    last_stop: float
    unit: str  # "frame" | "second"
    where: str  # file:line of the annotation with the last start


@dataclass(frozen=True)
class ClipSpec:
    """The config's clip size and the number of clips one training epoch reads."""

    num_frames: int
    sample_rate: int
    clips_per_epoch: int
    num_workers: int


def location(source: FrameSource) -> Path:
    """The file or folder a source reads."""
    if isinstance(source, JpegFolderSource):
        return source.folder
    if isinstance(source, VideoFileSource):
        return source.path
    raise TypeError(f"unknown frame source {source!r}")


def disk_bytes(source: FrameSource) -> int:
    """Bytes of a video file, or of the files of a frame folder."""
    path = location(source)
    if path.is_file():
        return path.stat().st_size
    return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file())


def _frame(value: float, unit: str, fps: float | None) -> int:
    """0-based frame of a frame number or a time in seconds."""
    if unit == "frame" or fps is None:
        return int(value)
    return round(value * fps)


def _sample(names: list[str], sample: int | None, seed: int) -> list[str]:
    """All names, or ``sample`` of them chosen with ``seed``."""
    if sample is None or sample >= len(names):
        return names
    return sorted(random.Random(seed).sample(names, sample))


def check_media(
    report: Report,
    what: str,
    needs: Mapping[str, MediaNeed],
    clip: ClipSpec,
    sample: int | None = None,
    seed: int = 0,
    expected_fps: Mapping[str, float] | None = None,
) -> None:
    """Check the media of every annotated video (``sample``: of that many random ones).

    Rows: present (every video, cheap), decodable, long enough for the annotations, frame
    rate (against ``expected_fps`` per video, when given), disk use and decode time per epoch.
    """
    names = sorted(needs)
    if not names:
        report.error(f"{what}s", "expected annotated videos, found none")
        return
    missing = [name for name in names if not needs[name].source.exists()]
    if missing:
        report.error(
            f"{what}s present",
            f"{len(missing)} of {len(names)} missing, first {missing[0]}",
            location(needs[missing[0]].source),
        )
    else:
        report.ok(f"{what}s present", f"{len(names)} of {len(names)}")
    present = [name for name in names if name not in set(missing)]
    if not present:
        return
    chosen = _sample(present, sample, seed)
    scope = f"{len(chosen)} sampled of {len(present)}" if len(chosen) < len(present) else ""
    broken, short, clamped, other_fps = [], [], [], []
    for name in chosen:
        need = needs[name]
        try:
            total, fps = need.source.num_frames, need.source.fps
        except DataFormatError as e:
            broken.append((name, str(e)))
            continue
        start, stop = (_frame(v, need.unit, fps) for v in (need.last_start, need.last_stop))
        if start >= total:
            short.append((name, total, start, need))
        elif stop >= total:
            clamped.append((name, total, stop, need))
        wanted = (expected_fps or {}).get(name)
        if fps is not None and wanted is not None and abs(fps - wanted) > FPS_TOLERANCE * wanted:
            other_fps.append((name, fps, wanted))
    ok = [name for name in chosen if name not in {b[0] for b in broken}]
    _decodable_row(report, what, chosen, broken, scope)
    _length_rows(report, what, ok, short, clamped, scope)
    if expected_fps is not None:
        if other_fps:
            name, fps, wanted = other_fps[0]
            report.warning(
                "frame rate",
                f"{len(other_fps)} of {len(ok)} differ from the listed rate, first {name}: "
                f"{fps:.2f} fps, listed {wanted:.2f}",
                location(needs[name].source),
            )
        else:
            report.ok("frame rate", f"{len(ok)} as listed {scope}".strip())
    _cost_rows(report, [needs[name].source for name in ok], len(present), clip)


def _decodable_row(
    report: Report, what: str, chosen: list[str], broken: list[tuple[str, str]], scope: str
) -> None:
    """The decodable row: the first undecodable video's error, or how many decode."""
    if broken:
        where, message = split_location(broken[0][1])
        report.error(
            f"{what}s decodable",
            f"{len(broken)} of {len(chosen)} not readable, first {broken[0][0]}: {message}",
            where,
        )
    else:
        report.ok(f"{what}s decodable", f"{len(chosen)} of {len(chosen)} {scope}".strip())


def _length_rows(
    report: Report, what: str, ok: list[str], short: list, clamped: list, scope: str
) -> None:
    """Rows for videos too short for their annotations (error) or for a clip end (warning)."""
    if not short:
        report.ok(f"{what} length", f"{len(ok)} cover their annotations {scope}".strip())
    for found, row, check, problem, annotation in (
        (short, report.error, "length", "too short (truncated?)", "but an annotation starts"),
        (clamped, report.warning, "end", CLAMPED, "annotation ends"),
    ):
        if found:  # a row on the first such video
            name, total, frame, need = found[0]
            where = need.where if found is short else location(need.source)
            message = f"{len(found)} of {len(ok)} {problem}, first {name}: {total} frames, "
            row(f"{what} {check}", f"{message}{annotation} at frame {frame}", where)


def _cost_rows(report: Report, sources: list[FrameSource], count: int, clip: ClipSpec) -> None:
    """Disk use (measured, extrapolated to ``count`` videos) and decode time per epoch."""
    if not sources:
        return
    measured = sum(disk_bytes(source) for source in sources)
    total = measured / len(sources) * count
    report.ok(
        "disk",
        f"{total / GIB:.3f} GiB for {count} videos (measured on {len(sources)}: "
        f"{measured / GIB:.3f} GiB)",
    )
    timed = sources[:: max(1, len(sources) // TIMED_CLIPS)][:TIMED_CLIPS]
    start = time.perf_counter()
    for source in timed:
        total_frames = source.num_frames
        indices = clip_frame_indices(
            total_frames // 2, clip.num_frames, clip.sample_rate, total_frames
        )
        try:
            source.read(indices)
        except DataFormatError as e:  # probed fine, but a frame in the middle does not decode
            where, what = split_location(str(e))
            report.error("clip decoding", f"frames {indices[0]}..{indices[-1]}: {what}", where)
            return
    per_clip = (time.perf_counter() - start) / len(timed)
    epoch = per_clip * clip.clips_per_epoch
    workers = max(1, clip.num_workers)
    report.ok(
        "decode time",
        f"{per_clip * 1000:.1f} ms per clip of {clip.num_frames}x{clip.sample_rate} frames "
        f"({len(timed)} timed); {clip.clips_per_epoch} clips per training epoch: "
        f"{epoch / SECONDS_PER_HOUR:.2f} h on one process, "
        f"{epoch / SECONDS_PER_HOUR / workers:.2f} h with data.num_workers={workers}",
    )

"""Segment-structured synthetic videos shared by the Epic-Kitchens and Breakfast writers.

A video is a run of labelled segments separated by idle frames. In a *cue* segment a square
of a colour rises on the left of the frame; in a *dependent* segment a neutral grey square
(the same whatever the cue's colour) falls on the right; *idle* frames show only the
background. A dependent segment's label names the colour of the cue before it, so a model
labels it correctly only if it remembers that cue. Captions name the colour in cue frames only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinymem.data.ava.synthetic import (
    BACKGROUND_LEVELS,
    BACKGROUND_NOISE,
    BACKGROUND_TINT,
    COLOUR_RGB,
    HELD_RGB,
    check_colours,
)
from tinymem.paths import PathType

logger = logging.getLogger(__name__)

CUE, DEPENDENT = "cue", "dependent"  # segment kinds
OBJECT_SIZE = 0.3  # square side as a fraction of the frame height
CUE_X = 0.1  # left edge of the cue square, fraction of the width
DEPENDENT_X = 0.6  # left edge of the dependent square
TOP_Y = 0.1  # highest square position (top edge), fraction of the height
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class SceneSegment:
    """A labelled stretch of a synthetic video: 0-based inclusive frames, kind and cue colour."""

    start: int
    end: int
    kind: str  # CUE or DEPENDENT
    colour: str  # the cue's colour (for a dependent segment: the colour it depends on)


def layout_segments(
    rng: np.random.Generator,
    plan: Sequence[tuple[str, str]],
    length: tuple[int, int],
    gap: tuple[int, int],
) -> tuple[list[SceneSegment], int]:
    """Place (kind, colour) segments in order with random lengths and idle gaps around them.

    Lengths and gaps are drawn uniformly from the inclusive ranges; the video starts and ends
    with a gap. Returns the segments and the video's frame count.
    """
    frame = int(rng.integers(gap[0], gap[1], endpoint=True))
    segments = []
    for kind, colour in plan:
        size = int(rng.integers(length[0], length[1], endpoint=True))
        segments.append(SceneSegment(start=frame, end=frame + size - 1, kind=kind, colour=colour))
        frame += size + int(rng.integers(gap[0], gap[1], endpoint=True))
    return segments, max(frame, segments[-1].end + 1 if segments else 1)


def render(
    rng: np.random.Generator,
    segments: Sequence[SceneSegment],
    num_frames: int,
    height: int,
    width: int,
) -> np.ndarray:
    """Frames uint8 [T, H, W, 3]: background plus each segment's moving square."""
    level = int(rng.integers(*BACKGROUND_LEVELS, endpoint=True))
    tint = rng.integers(-BACKGROUND_TINT, BACKGROUND_TINT, size=3, endpoint=True)
    noise = rng.integers(
        -BACKGROUND_NOISE, BACKGROUND_NOISE, size=(height, width, 3), endpoint=True
    )
    background = np.clip(level + tint + noise, 0, 255).astype(np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)  # [T, H, W, 3]
    side = round(OBJECT_SIZE * height)
    top, bottom = round(TOP_Y * height), height - side - 1
    for segment in segments:
        steps = max(segment.end - segment.start, 1)
        for frame in range(segment.start, segment.end + 1):
            progress = (frame - segment.start) / steps  # 0 .. 1 over the segment
            if segment.kind == CUE:  # rises on the left, in the cue colour
                x, y = round(CUE_X * width), round(bottom + (top - bottom) * progress)
                colour = COLOUR_RGB[segment.colour]
            else:  # falls on the right, neutral grey whatever the cue
                x, y = round(DEPENDENT_X * width), round(top + (bottom - top) * progress)
                colour = HELD_RGB
            frames[frame, y : y + side, x : x + side] = colour
    return frames


def frame_captions(
    segments: Sequence[SceneSegment],
    num_frames: int,
    cue: Callable[[SceneSegment], str],
    dependent: str,
    idle: str,
) -> list[str]:
    """Caption of every frame: ``cue(segment)`` in cue frames, fixed texts elsewhere."""
    captions = [idle] * num_frames
    for segment in segments:
        text = cue(segment) if segment.kind == CUE else dependent
        captions[segment.start : segment.end + 1] = [text] * (segment.end - segment.start + 1)
    return captions


def write_captions(path: PathType, captions: Sequence[str]) -> None:
    """Write a CaptionStore JSONL file with a line per frame."""
    lines = [json.dumps({"frame": i, "caption": c}) + "\n" for i, c in enumerate(captions)]
    Path(path).write_text("".join(lines))


@dataclass(frozen=True)
class SegmentVideo:
    """A generated video: its segments, frame count and frames uint8 [T, H, W, 3]."""

    segments: list[SceneSegment]
    num_frames: int
    frames: np.ndarray

    def write_captions(
        self, path: PathType, cue: Callable[[SceneSegment], str], dependent: str, idle: str
    ) -> None:
        """Write the CaptionStore file of :func:`frame_captions` (cue frames: ``cue(segment)``)."""
        write_captions(path, frame_captions(self.segments, self.num_frames, cue, dependent, idle))


def segment_video(
    rng: np.random.Generator,
    episode_colours: Sequence[str],
    dependent_segments: int,
    sizes: tuple[tuple[int, int], tuple[int, int]],
    height: int,
    width: int,
) -> SegmentVideo:
    """A video of episodes: per colour a cue segment, then ``dependent_segments`` dependent ones.

    ``sizes`` are the (segment length, idle gap) ranges of :func:`layout_segments`; ``rng``
    draws the layout, then the pixels (:func:`render`).
    """
    dependents = [DEPENDENT] * dependent_segments
    plan = [(kind, colour) for colour in episode_colours for kind in [CUE, *dependents]]
    segments, num_frames = layout_segments(rng, plan, *sizes)
    return SegmentVideo(segments, num_frames, render(rng, segments, num_frames, height, width))


def manifest(version: int, spec: object) -> dict:
    """JSON content of manifest.json for a generator version and a spec dataclass."""
    return {"generator_version": version, "spec": dataclasses.asdict(spec)}


def ensure_generated(
    out_dir: PathType, version: int, spec: object, generate: Callable[[Path], None]
) -> Path:
    """Reuse ``out_dir`` when its manifest records (version, spec), else generate, manifest last."""
    out = Path(out_dir)
    path = out / MANIFEST
    expected = json.loads(json.dumps(manifest(version, spec)))
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        recorded = None
    if recorded == expected:
        logger.info("reusing synthetic dataset in %s", out)
        return out
    path.unlink(missing_ok=True)  # an interrupted generation must be redone
    out.mkdir(parents=True, exist_ok=True)
    generate(out)
    path.write_text(json.dumps(expected, indent=2) + "\n")
    logger.info("wrote synthetic dataset to %s", out)
    return out


__all__ = [
    "CUE",
    "DEPENDENT",
    "SceneSegment",
    "SegmentVideo",
    "check_colours",
    "ensure_generated",
    "frame_captions",
    "layout_segments",
    "render",
    "segment_video",
    "write_captions",
]

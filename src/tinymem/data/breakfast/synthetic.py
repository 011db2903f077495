"""A tiny synthetic Breakfast world in the real file layouts, where memory helps.

Each video (one per subject x camera x activity) is SIL, then episodes of a cue segment
``take_<colour>_cup`` (a square of the activity's colour rises) and ``dependent_segments``
segments ``pour_<colour>_cup`` (a neutral grey square falls), separated and ended by SIL (see
:mod:`tinymem.data.synthetic_segments`). A pour segment's sub-action names the colour of the
earlier cue, and the activity (``colours[i]`` for ``activities[i]``) shows only in cue
segments: the video's last clips are SIL, so predicting the activity from the last clip (task
B) needs memory, and so does labelling pour segments (task A).

Layout under ``out_dir``::

    BreakfastII_15fps_qvga_sync/<subject>/<camera>/<subject>_<activity>.avi   MPEG-4, 15 fps
    groundTruth/<video>.txt             one sub-action name per frame
    segmentation_coarse/<video>.txt     raw "start-end label" lines, 1-based inclusive
    mapping.txt                         "id name" from "0 SIL"
    splits/{train,test}.split{1..4}.bundle
    captions/<video>.jsonl
    manifest.json                       written last
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tinymem.data.breakfast.formats import (
    ACTIVITIES,
    FPS,
    TEST_SUBJECTS,
    frames_to_segments,
    is_test_subject,
    parse_video_name,
    write_bundle,
    write_groundtruth,
    write_mapping,
    write_segmentation,
)
from tinymem.data.synthetic_segments import (
    DEPENDENT,
    check_colours,
    ensure_generated,
    segment_video,
)
from tinymem.data.synthetic_spec import WorldSpec
from tinymem.paths import PathType

GENERATOR_VERSION = 1  # bump when the generated content changes
VIDEO_DIR = "BreakfastII_15fps_qvga_sync"
VIDEO_PATTERN = "{subject}/{camera}/{subject}_{activity}.avi"
GROUNDTRUTH_DIR = "groundTruth"
SEGMENTATION_DIR = "segmentation_coarse"
MAPPING_FILE = "mapping.txt"
SPLIT_DIR = "splits"
CAPTION_DIR = "captions"
SILENCE = "SIL"
AVI_CODEC = "mpeg4"  # MPEG-4 part 2 in AVI: frame timestamps start at 0 (no B-frame delay)
AVI_OPTIONS = {"qmin": "1", "qmax": "2"}  # near-lossless, so colours survive
PIXEL_FORMAT = "yuv420p"
ASPECT = (3, 4)  # height : width, as Breakfast's 320x240
CAPTION_CUE = "a person takes a {colour} cup"
CAPTION_DEPENDENT = "a person pours from a cup"
CAPTION_IDLE = "an empty kitchen counter"


@dataclass(frozen=True)
class SyntheticBreakfastSpec(WorldSpec):
    """Size and timing of the synthetic Breakfast world (after ``seed``)."""

    subjects: tuple[str, ...] = ("P03", "P16", "P29", "P42")  # one test subject per split
    activities: tuple[str, ...] = ("cereals", "coffee", "juice", "tea")
    cameras: tuple[str, ...] = ("cam01",)
    episodes_per_video: int = 2
    dependent_segments: int = 1  # pour segments after each cue
    segment_frames: tuple[int, int] = (8, 12)  # cue / pour segment length range (inclusive)
    sil_frames: tuple[int, int] = (3, 6)  # SIL between segments and at both ends (min >= 1)
    frame_size: int = 64  # width; height is 3/4 of it
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow")  # of activities[i]

    list_fields = ("subjects", "activities", "cameras", "segment_frames", "sil_frames", "colours")

    def problems(self) -> list[str]:
        """What keeps these values from making a valid world."""
        problems = check_colours(self.colours)
        if len(self.colours) < len(self.activities):
            problems.append("need a colour per activity")
        if not self.activities or any(a not in ACTIVITIES for a in self.activities):
            problems.append(f"activities must be names from {list(ACTIVITIES)}")
        for subject in self.subjects:
            try:
                parse_video_name(f"{subject}_cam01_{subject}_{ACTIVITIES[0]}")
            except ValueError as e:
                problems.append(f"subject {subject!r}: {e}")
        if not self.subjects or not self.cameras:
            problems.append("subjects and cameras must not be empty")
        if self.seed < 0 or self.dependent_segments < 0 or self.episodes_per_video < 1:
            problems.append("seed, dependent_segments must be >= 0, episodes_per_video >= 1")
        if not 1 <= self.segment_frames[0] <= self.segment_frames[1]:
            problems.append("segment_frames must be [min, max] with 1 <= min <= max")
        if not 1 <= self.sil_frames[0] <= self.sil_frames[1]:
            problems.append("sil_frames must be [min, max] with 1 <= min <= max")
        if self.frame_size < 16 or self.frame_size % 8:
            problems.append("frame_size must be a multiple of 8, >= 16")
        return problems

    @property
    def class_names(self) -> list[str]:
        """mapping.txt names: SIL, then take/pour per colour."""
        names = [SILENCE]
        for colour in self.colours:
            names += [f"take_{colour}_cup", f"pour_{colour}_cup"]
        return names

    def label(self, kind: str, colour: str) -> int:
        """Sub-action id of a cue (take) or dependent (pour) segment of a colour."""
        return 1 + 2 * self.colours.index(colour) + (kind == DEPENDENT)

    @property
    def video_names(self) -> list[str]:
        """Every video, subject x camera x activity."""
        return [
            f"{subject}_{camera}_{subject}_{activity}"
            for subject in self.subjects
            for camera in self.cameras
            for activity in self.activities
        ]


def write_avi(path: PathType, frames: np.ndarray, fps: int) -> None:
    """Encode uint8 [T, H, W, 3] RGB frames (H, W even) as an MPEG-4 AVI file."""
    num_frames, height, width, _ = frames.shape
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(AVI_CODEC, rate=fps, options=AVI_OPTIONS)
        stream.width, stream.height, stream.pix_fmt = width, height, PIXEL_FORMAT
        stream.codec_context.time_base = Fraction(1, fps)
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[index]), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _generate(spec: SyntheticBreakfastSpec, out: Path) -> None:
    """Write every file of the world under ``out`` (the manifest is the caller's)."""
    names = spec.class_names
    for folder in (GROUNDTRUTH_DIR, SEGMENTATION_DIR, SPLIT_DIR, CAPTION_DIR):
        (out / folder).mkdir(parents=True, exist_ok=True)
    write_mapping(out / MAPPING_FILE, names)
    width = spec.frame_size
    height = width * ASPECT[0] // ASPECT[1]
    for index, name in enumerate(spec.video_names):
        video = parse_video_name(name)
        colour = spec.colours[spec.activities.index(video.activity)]
        rng = np.random.default_rng([spec.seed, index])
        episodes = [colour] * spec.episodes_per_video
        sizes = (spec.segment_frames, spec.sil_frames)
        generated = segment_video(rng, episodes, spec.dependent_segments, sizes, height, width)
        labels = [0] * generated.num_frames  # SIL
        for scene in generated.segments:
            labels[scene.start : scene.end + 1] = [spec.label(scene.kind, scene.colour)] * (
                scene.end - scene.start + 1
            )
        segments = frames_to_segments(labels)
        write_groundtruth(out / GROUNDTRUTH_DIR / f"{name}.txt", segments, names)
        write_segmentation(out / SEGMENTATION_DIR / f"{name}.txt", segments, names)
        path = out / VIDEO_DIR / video.video_path(VIDEO_PATTERN, VIDEO_PATTERN)
        write_avi(path, generated.frames, FPS)  # [T, H, W, 3]
        generated.write_captions(
            out / CAPTION_DIR / f"{name}.jsonl",
            cue=lambda s: CAPTION_CUE.format(colour=s.colour),
            dependent=CAPTION_DEPENDENT,
            idle=CAPTION_IDLE,
        )
    for split in TEST_SUBJECTS:
        videos = [parse_video_name(name) for name in spec.video_names]
        for side, test in (("train", False), ("test", True)):
            chosen = [v.name for v in videos if is_test_subject(v.subject, split) == test]
            write_bundle(out / SPLIT_DIR / f"{side}.split{split}.bundle", chosen)


def ensure_synthetic_breakfast(
    out_dir: PathType, spec: SyntheticBreakfastSpec | None = None
) -> Path:
    """Reuse ``out_dir`` when its manifest records this spec, else (re)generate it."""
    spec = spec or SyntheticBreakfastSpec()
    return ensure_generated(out_dir, GENERATOR_VERSION, spec, lambda out: _generate(spec, out))

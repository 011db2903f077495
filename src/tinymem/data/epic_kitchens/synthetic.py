"""A tiny synthetic Epic-Kitchens-100 world in the real file layout, where memory helps.

Each video is a run of episodes (see :mod:`tinymem.data.synthetic_segments`): a cue segment
"take <noun>" shows a square whose colour names the noun (red tomato, green lettuce, ...), then
``dependent_segments`` segments "put <noun>" show a neutral grey square. The verb is visible in
every segment (where the square is and how it moves); the noun of a "put" segment is only in
the earlier cue, so it needs memory. Class ids are synthetic: verbs take=0 and put=1 (as in
EK-100), noun id = position of the colour in ``colours``.

Layout under ``out_dir`` (the names of the public releases)::

    epic-kitchens-100-annotations/EPIC_100_{train,validation}.csv, EPIC_100_video_info.csv
    EPIC-KITCHENS/<participant>/videos/<video_id>.MP4                    (write_videos)
    EPIC-KITCHENS/<participant>/rgb_frames/<video_id>/frame_%010d.jpg    (write_frames, from 1)
    captions/<video_id>.jsonl
    manifest.json                                                        written last
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tinymem.data.epic_kitchens.formats import (
    EpicSegment,
    EpicVideoInfo,
    write_epic_annotations,
    write_video_info,
)
from tinymem.data.synthetic_segments import (
    CUE,
    DEPENDENT,
    check_colours,
    ensure_generated,
    segment_video,
)
from tinymem.data.synthetic_spec import WorldSpec
from tinymem.data.video import write_video
from tinymem.paths import PathType

GENERATOR_VERSION = 1  # bump when the generated content changes
SPLIT_STREAMS = {"train": 0, "val": 1}  # seed words: splits never share random streams
ANNOTATION_DIR = "epic-kitchens-100-annotations"
MEDIA_DIR = "EPIC-KITCHENS"
CAPTION_DIR = "captions"
SPLIT_FILES = {"train": "EPIC_100_train.csv", "val": "EPIC_100_validation.csv"}
VIDEO_INFO_FILE = "EPIC_100_video_info.csv"
FRAME_PATTERN = "{participant_id}/rgb_frames/{video_id}/frame_{frame:010d}.jpg"
VIDEO_PATTERN = "{participant_id}/videos/{video_id}.MP4"
FIRST_FRAME_NUMBER = 1
JPEG_QUALITY = 95
VAL_VIDEO_OFFSET = 100  # validation videos are numbered P01_101 ... (EK-100 extension style)
VERBS = {CUE: ("take", 0), DEPENDENT: ("put", 1)}  # segment kind -> (verb, verb_class)
NOUN_OF_COLOUR = {
    "red": "tomato",
    "green": "lettuce",
    "blue": "plate",
    "yellow": "lemon",
    "cyan": "glass",
    "magenta": "onion",
    "orange": "carrot",
    "purple": "aubergine",
}
CAPTION_CUE = "a hand takes a {colour} {noun}"
CAPTION_DEPENDENT = "a hand puts something down"
CAPTION_IDLE = "a kitchen counter"


@dataclass(frozen=True)
class SyntheticEpicSpec(WorldSpec):
    """Size and timing of the synthetic EK-100 world (after ``seed``)."""

    num_train_videos: int = 8
    num_val_videos: int = 4
    num_participants: int = 2
    episodes_per_video: int = 3
    dependent_segments: int = 1  # "put" segments after each cue
    fps: int = 12
    segment_frames: tuple[int, int] = (8, 12)  # segment length range (inclusive)
    gap_frames: tuple[int, int] = (0, 3)  # unannotated frames between segments
    frame_size: int = 64  # square frames, even
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow")
    write_frames: bool = True  # the JPEG frame layout
    write_videos: bool = True  # the MP4 video layout

    list_fields = ("segment_frames", "gap_frames", "colours")

    def problems(self) -> list[str]:
        """What keeps these values from making a valid world."""
        counts = ("num_train_videos", "num_val_videos", "dependent_segments", "seed")
        positive = ("num_participants", "episodes_per_video", "fps")
        problems = check_colours(self.colours) + self.below(
            {**dict.fromkeys(counts, 0), **dict.fromkeys(positive, 1)}
        )
        low, high = self.segment_frames
        if not 1 <= low <= high:
            problems.append("segment_frames must be [min, max] with 1 <= min <= max")
        if not 0 <= self.gap_frames[0] <= self.gap_frames[1]:
            problems.append("gap_frames must be [min, max] with 0 <= min <= max")
        if self.frame_size < 16 or self.frame_size % 2:
            problems.append("frame_size must be even and >= 16")
        if not (self.write_frames or self.write_videos):
            problems.append("write_frames or write_videos must be true")
        return problems

    def noun(self, colour: str) -> tuple[str, int]:
        """Noun and noun class of a colour."""
        return NOUN_OF_COLOUR[colour], self.colours.index(colour)


def video_ids(spec: SyntheticEpicSpec, split: str) -> list[tuple[str, str]]:
    """(participant_id, video_id) of every video of a split."""
    count = spec.num_train_videos if split == "train" else spec.num_val_videos
    offset = 0 if split == "train" else VAL_VIDEO_OFFSET
    ids = []
    for index in range(count):
        participant = f"P{index % spec.num_participants + 1:02d}"
        number = offset + index // spec.num_participants + 1
        ids.append((participant, f"{participant}_{number:02d}"))
    return ids


def _annotations(
    spec: SyntheticEpicSpec, participant: str, video: str, segments
) -> list[EpicSegment]:
    """EPIC rows of a video's segments (frames 0-based, times = frame / fps)."""
    rows = []
    for number, segment in enumerate(segments):
        verb, verb_class = VERBS[segment.kind]
        noun, noun_class = spec.noun(segment.colour)
        start_sec, stop_sec = segment.start / spec.fps, segment.end / spec.fps
        rows.append(
            EpicSegment(
                narration_id=f"{video}_{number}",
                participant_id=participant,
                video_id=video,
                narration_sec=start_sec,
                start_sec=start_sec,
                stop_sec=stop_sec,
                start_frame=segment.start,
                stop_frame=segment.end,
                narration=f"{verb} {noun}",
                verb=verb,
                verb_class=verb_class,
                noun=noun,
                noun_class=noun_class,
                all_nouns=(noun,),
                all_noun_classes=(noun_class,),
            )
        )
    return rows


def _write_frames(folder: Path, frames: np.ndarray) -> None:
    """One JPEG per frame, numbered from FIRST_FRAME_NUMBER (stale frames removed first)."""
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for index, image in enumerate(frames):
        path = folder / f"frame_{index + FIRST_FRAME_NUMBER:010d}.jpg"
        Image.fromarray(np.ascontiguousarray(image)).save(path, quality=JPEG_QUALITY)  # [H, W, 3]


def _generate(spec: SyntheticEpicSpec, out: Path) -> None:
    """Write every file of the world under ``out`` (the manifest is the caller's)."""
    annotation_dir = out / ANNOTATION_DIR
    annotation_dir.mkdir(parents=True, exist_ok=True)
    (out / CAPTION_DIR).mkdir(exist_ok=True)
    infos = []
    for split, file_name in SPLIT_FILES.items():
        rows = []
        for index, (participant, video) in enumerate(video_ids(spec, split)):
            rng = np.random.default_rng([spec.seed, SPLIT_STREAMS[split], index])
            colours = rng.choice(len(spec.colours), size=spec.episodes_per_video)
            size = spec.frame_size
            generated = segment_video(
                rng,
                [spec.colours[int(c)] for c in colours],
                spec.dependent_segments,
                (spec.segment_frames, spec.gap_frames),
                size,
                size,
            )
            segments, num_frames, frames = (
                generated.segments,
                generated.num_frames,
                generated.frames,
            )
            media = out / MEDIA_DIR / participant
            if spec.write_videos:
                (media / "videos").mkdir(parents=True, exist_ok=True)
                write_video(media / "videos" / f"{video}.MP4", frames, spec.fps)  # [T, S, S, 3]
            if spec.write_frames:
                _write_frames(media / "rgb_frames" / video, frames)
            generated.write_captions(
                out / CAPTION_DIR / f"{video}.jsonl",
                cue=lambda s: CAPTION_CUE.format(colour=s.colour, noun=spec.noun(s.colour)[0]),
                dependent=CAPTION_DEPENDENT,
                idle=CAPTION_IDLE,
            )
            rows += _annotations(spec, participant, video, segments)
            infos.append(EpicVideoInfo(video, num_frames / spec.fps, float(spec.fps), size, size))
        write_epic_annotations(annotation_dir / file_name, rows)
    write_video_info(annotation_dir / VIDEO_INFO_FILE, infos)


def ensure_synthetic_epic(out_dir: PathType, spec: SyntheticEpicSpec | None = None) -> Path:
    """Reuse ``out_dir`` when its manifest records this spec, else (re)generate it."""
    spec = spec or SyntheticEpicSpec()
    return ensure_generated(out_dir, GENERATOR_VERSION, spec, lambda out: _generate(spec, out))

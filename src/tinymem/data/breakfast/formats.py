"""Breakfast files and subject splits.

Videos are named ``<subject>_<camera>_<subject>_<activity>`` (``P03_cam01_P03_cereals``),
15 fps. Annotation layouts, both read into 0-based inclusive frame segments:

- the common per-frame layout (MS-TCN and successors): ``groundTruth/<video>.txt`` (or
  ``groundTruth/<video>`` without the suffix, as some public copies store them) with one
  sub-action name per frame, ``mapping.txt`` with lines ``id name`` (48 lines from ``0 SIL``)
  and ``splits/{train,test}.splitN.bundle`` listing ``<video>.txt`` files;
- the raw coarse segmentation files of the release (``<video>.txt``, any folder nesting), one
  ``start-end label`` line per segment, 1-based inclusive frames, contiguous from frame 1.

Splits are by subject: split N tests the subjects of ``TEST_SUBJECTS[N]`` (s1 P03-P15, s2
P16-P28, s3 P29-P41, s4 P42-P54) and trains on the others.

Bad input raises DataFormatError naming the file and line: an unparsable line, a label name
that mapping.txt does not list (unknown class), a gap or overlap between raw segments, a
video name not in the ``<subject>_<camera>_<subject>_<activity>`` form or with an unknown
activity, a bundle listing a subject of the other side of its split.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tinymem.errors import data_error
from tinymem.paths import PathType
from tinymem.text_files import read_text

ACTIVITIES = (
    "cereals",
    "coffee",
    "friedegg",
    "juice",
    "milk",
    "pancake",
    "salat",
    "sandwich",
    "scrambledegg",
    "tea",
)
FPS = 15
TEST_SUBJECTS = {1: range(3, 16), 2: range(16, 29), 3: range(29, 42), 4: range(42, 55)}
SUBJECTS = range(3, 55)  # P03 .. P54
VIDEO_NAME = re.compile(r"^P(\d+)_([A-Za-z]+\d*)_P(\d+)_([A-Za-z]+)$")
SEGMENT_LINE = re.compile(r"^(\d+)-(\d+)\s+(\S+)$")
MAPPING_LINE = re.compile(r"^(\d+)\s+(\S+)$")
ANNOTATION_SUFFIX = ".txt"
STEREO_PREFIX = "stereo"  # cameras named stereoNN use the stereo video pattern


@dataclass(frozen=True)
class BreakfastVideo:
    """A video identified by its name ``<subject>_<camera>_<subject>_<activity>``."""

    name: str
    subject: int  # 3 for P03
    camera: str
    activity: str

    @property
    def subject_id(self) -> str:
        """``P03``."""
        return f"P{self.subject:02d}"

    @property
    def activity_index(self) -> int:
        """Activity class id (index in ACTIVITIES)."""
        return ACTIVITIES.index(self.activity)

    def video_path(self, pattern: str, stereo_pattern: str) -> str:
        """Relative video path from a pattern with {subject} {camera} {activity} {video} fields."""
        chosen = stereo_pattern if self.camera.startswith(STEREO_PREFIX) else pattern
        return chosen.format(
            subject=self.subject_id, camera=self.camera, activity=self.activity, video=self.name
        )


@dataclass(frozen=True)
class Segment:
    """An annotated segment: 0-based inclusive frames and a sub-action id."""

    start: int
    end: int
    label: int
    line: int = 0  # line in its annotation file where the segment starts (0: built in code)


@dataclass(frozen=True)
class BreakfastAnnotation:
    """A video with its segments in time order and the file they came from."""

    video: BreakfastVideo
    segments: tuple[Segment, ...]
    path: Path


def parse_video_name(
    name: str, path: PathType | None = None, line: int | None = None
) -> BreakfastVideo:
    """Parse ``P03_cam01_P03_cereals``; errors name ``path``/``line`` when given."""
    where = path if path is not None else "video name"
    match = VIDEO_NAME.match(name)
    if match is None:
        raise data_error(
            where,
            f"expected a video name <subject>_<camera>_<subject>_<activity>, got {name!r}",
            line,
        )
    subject, camera, subject_again, activity = match.groups()
    if subject != subject_again:
        raise data_error(where, f"expected the same subject twice in {name!r}", line)
    if int(subject) not in SUBJECTS:
        raise data_error(
            where, f"expected a subject P{SUBJECTS[0]:02d}-P{SUBJECTS[-1]:02d}, got {name!r}", line
        )
    if activity not in ACTIVITIES:
        raise data_error(
            where, f"expected an activity in {list(ACTIVITIES)}, got {activity!r} in {name!r}", line
        )
    return BreakfastVideo(name=name, subject=int(subject), camera=camera, activity=activity)


def _lines(path: PathType) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of each non-blank line; DataFormatError if missing."""
    text = read_text(path)
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_mapping(path: PathType) -> list[str]:
    """Sub-action names by id from mapping.txt (``id name`` lines, ids 0, 1, 2, ...)."""
    names: list[str] = []
    for number, text in _lines(path):
        match = MAPPING_LINE.match(text)
        if match is None:
            raise data_error(path, f"expected a line 'id name', got {text!r}", number)
        class_id, name = int(match.group(1)), match.group(2)
        if class_id != len(names):
            raise data_error(
                path, f"expected id {len(names)} (ids in order from 0), got {class_id}", number
            )
        if name in names:
            raise data_error(
                path, f"expected unique names, {name!r} has id {names.index(name)}", number
            )
        names.append(name)
    if not names:
        raise data_error(path, "expected at least one 'id name' line, found none")
    return names


def write_mapping(path: PathType, names: Sequence[str]) -> None:
    """Write mapping.txt."""
    Path(path).write_text("".join(f"{i} {name}\n" for i, name in enumerate(names)))


def _class_id(path: PathType, line: int, name: str, classes: Mapping[str, int]) -> int:
    """Id of a sub-action name; DataFormatError (unknown class) when mapping.txt lacks it."""
    if name not in classes:
        raise data_error(path, f"expected a sub-action listed in mapping.txt, got {name!r}", line)
    return classes[name]


def frames_to_segments(labels: Sequence[int], lines: Sequence[int] | None = None) -> list[Segment]:
    """Runs of equal per-frame labels as 0-based inclusive segments, in order."""
    segments: list[Segment] = []
    start = 0
    for frame in range(1, len(labels) + 1):
        if frame == len(labels) or labels[frame] != labels[start]:
            line = lines[start] if lines is not None else 0
            segments.append(Segment(start=start, end=frame - 1, label=labels[start], line=line))
            start = frame
    return segments


def read_groundtruth(path: PathType, classes: Mapping[str, int]) -> list[Segment]:
    """Segments of a per-frame groundTruth/<video>.txt file (one sub-action name per frame)."""
    lines = _lines(path)
    if not lines:
        raise data_error(path, "expected one sub-action name per frame, found no lines")
    labels = []
    for number, text in lines:
        if len(text.split()) != 1:
            raise data_error(path, f"expected one sub-action name per line, got {text!r}", number)
        labels.append(_class_id(path, number, text, classes))
    return frames_to_segments(labels, [number for number, _ in lines])


def read_segmentation(path: PathType, classes: Mapping[str, int]) -> list[Segment]:
    """Segments of a raw segmentation file (``start-end label``, 1-based inclusive, contiguous)."""
    segments: list[Segment] = []
    for number, text in _lines(path):
        match = SEGMENT_LINE.match(text)
        if match is None:
            raise data_error(path, f"expected a line 'start-end label', got {text!r}", number)
        first, last = int(match.group(1)), int(match.group(2))
        expected_first = segments[-1].end + 2 if segments else 1  # 1-based next frame
        if first != expected_first:
            raise data_error(
                path,
                f"expected contiguous segments, this one to start at frame {expected_first}, "
                f"got {first}",
                number,
            )
        if last < first:
            raise data_error(path, f"expected start <= end, got {first}-{last}", number)
        label = _class_id(path, number, match.group(3), classes)
        segments.append(Segment(start=first - 1, end=last - 1, label=label, line=number))
    if not segments:
        raise data_error(path, "expected at least one 'start-end label' line, found none")
    return segments


def write_segmentation(path: PathType, segments: Iterable[Segment], names: Sequence[str]) -> None:
    """Write a raw segmentation file (1-based inclusive frames)."""
    text = "".join(f"{s.start + 1}-{s.end + 1} {names[s.label]}\n" for s in segments)
    Path(path).write_text(text)


def write_groundtruth(path: PathType, segments: Iterable[Segment], names: Sequence[str]) -> None:
    """Write a per-frame groundTruth file (one name per frame)."""
    text = "".join(f"{names[s.label]}\n" * (s.end - s.start + 1) for s in segments)
    Path(path).write_text(text)


def find_segmentation_files(folder: PathType) -> dict[str, Path]:
    """Video name -> raw segmentation file, searched recursively (``<video>.txt``)."""
    found: dict[str, Path] = {}
    root = Path(folder)
    if not root.is_dir():
        raise data_error(root, "expected a folder of raw segmentation files, it does not exist")
    for path in sorted(root.rglob(f"*{ANNOTATION_SUFFIX}")):
        if path.stem in found:
            raise data_error(
                path, f"expected one segmentation file per video, also {found[path.stem]}"
            )
        found[path.stem] = path
    return found


@dataclass(frozen=True)
class GroundTruthFiles:
    """The per-frame files found in a groundTruth folder, and what else was there."""

    files: dict[str, Path]  # video name -> file
    with_suffix: int  # files named <video>.txt
    without_suffix: int  # files named <video>
    ignored: tuple[Path, ...]  # entries whose name is not a Breakfast video name

    def describe(self) -> str:
        """One line saying what was found, e.g. for a log or the dataset doctor."""
        text = (
            f"{len(self.files)} groundTruth files ({self.with_suffix} named <video>"
            f"{ANNOTATION_SUFFIX}, {self.without_suffix} named <video> without a suffix)"
        )
        if self.ignored:
            text += f"; {len(self.ignored)} other entries ignored, first {self.ignored[0].name}"
        return text


def find_groundtruth_files(folder: PathType) -> GroundTruthFiles:
    """Per-frame groundTruth files of a folder, named ``<video>.txt`` or ``<video>``.

    Both namings are accepted (and may be mixed); a video with both files is an error, and
    entries that are not named after a Breakfast video are counted in ``ignored``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise data_error(root, "expected a folder of per-frame groundTruth files (missing)")
    files: dict[str, Path] = {}
    counts = {True: 0, False: 0}
    ignored = []
    for path in sorted(root.iterdir()):
        name = path.name.removesuffix(ANNOTATION_SUFFIX)
        if not path.is_file() or VIDEO_NAME.match(name) is None:
            ignored.append(path)
            continue
        if name in files:
            raise data_error(path, f"expected one groundTruth file per video, also {files[name]}")
        files[name] = path
        counts[path.name != name] += 1
    return GroundTruthFiles(files, counts[True], counts[False], tuple(ignored))


@dataclass(frozen=True)
class AnnotationFiles:
    """The annotation files of a video set in one layout, and what else was there."""

    files: dict[str, Path]  # video name -> file
    description: str  # one line saying what was found (a log, the dataset doctor)
    ignored: tuple[Path, ...] = ()  # entries whose name is not a Breakfast video name


def annotation_reader(annotation_format: str) -> Callable[..., list[Segment]]:
    """Reader of one annotation file of ``annotation_format``: ``segmentation`` (raw files)
    or else ``groundtruth`` (per-frame files); called with (path, class name -> id)."""
    return read_segmentation if annotation_format == "segmentation" else read_groundtruth


def find_annotation_files(annotation_format: str, folder: PathType) -> AnnotationFiles:
    """The files of ``folder`` in ``annotation_format`` (as :func:`annotation_reader`)."""
    if annotation_format == "segmentation":
        files = find_segmentation_files(folder)
        return AnnotationFiles(files, f"{len(files)} raw segmentation files")
    found = find_groundtruth_files(folder)
    return AnnotationFiles(found.files, found.describe(), found.ignored)


def _bundle_entries(path: PathType) -> list[tuple[int, BreakfastVideo]]:
    """(line, video) of each line of a split bundle (``<video>.txt`` per line)."""
    return [
        (number, parse_video_name(text.removesuffix(ANNOTATION_SUFFIX), path, number))
        for number, text in _lines(path)
    ]


def read_bundle(path: PathType) -> list[BreakfastVideo]:
    """Videos listed by a split bundle (one ``<video>.txt`` per line)."""
    return [video for _, video in _bundle_entries(path)]


def write_bundle(path: PathType, names: Iterable[str]) -> None:
    """Write a split bundle file."""
    Path(path).write_text("".join(f"{name}{ANNOTATION_SUFFIX}\n" for name in names))


def _check_split(split: int) -> None:
    """Raise unless split is 1..4."""
    if split not in TEST_SUBJECTS:
        raise ValueError(f"data.split: expected one of {sorted(TEST_SUBJECTS)}, got {split!r}")


def is_test_subject(subject: int, split: int) -> bool:
    """Whether a subject (3 for P03) is in the test side of split 1..4."""
    _check_split(split)
    return subject in TEST_SUBJECTS[split]


def split_videos(
    videos: Iterable[BreakfastVideo], split: int
) -> tuple[list[BreakfastVideo], list[BreakfastVideo]]:
    """(train, test) videos of a split, by subject."""
    train, test = [], []
    for video in videos:
        (test if is_test_subject(video.subject, split) else train).append(video)
    return train, test


def check_bundle_split(path: PathType, split: int, test: bool) -> list[BreakfastVideo]:
    """Read a bundle and check every video's subject is on its side of the split."""
    entries = _bundle_entries(path)
    side = "test" if test else "train"
    for number, video in entries:
        if is_test_subject(video.subject, split) != test:
            raise data_error(
                path,
                f"expected {side} subjects of split {split} (test: P{TEST_SUBJECTS[split][0]:02d}"
                f"-P{TEST_SUBJECTS[split][-1]:02d}), got {video.name}",
                number,
            )
    return [video for _, video in entries]


def split_sides(
    files: Mapping[str, PathType],
    split: int,
    train_bundle: PathType | None,
    test_bundle: PathType | None,
) -> tuple[list[BreakfastVideo], list[BreakfastVideo]]:
    """(train, test) videos of split 1..4: the bundles' (checked against the subject split) or,
    when the bundles are None, every video of ``files`` (name -> annotation file) by subject."""
    if train_bundle is not None:
        train = check_bundle_split(train_bundle, split, test=False)
        return train, check_bundle_split(test_bundle, split, test=True)
    videos = [parse_video_name(name, path) for name, path in files.items()]
    return split_videos(videos, split)

"""Epic-Kitchens-100 files: annotation and video-info CSVs, read and written.

Files (the public ``epic-kitchens-100-annotations`` release):

- ``EPIC_100_train.csv`` / ``EPIC_100_validation.csv``: a header row naming the columns
  ``narration_id, participant_id, video_id, narration_timestamp, start_timestamp,
  stop_timestamp, start_frame, stop_frame, narration, verb, verb_class, noun, noun_class,
  all_nouns, all_noun_classes`` (other columns, such as ``uid``, are ignored); timestamps
  ``HH:mm:ss.SS`` (any number of fraction digits); ``narration_timestamp`` may be empty (the
  release has 70 such validation and 117 train rows, listed in
  ``EPIC_100_*_missing_timestamp_narrations.csv``; it is not needed to train or evaluate, so
  such segments are kept with ``narration_sec=None``); frames 0-based; ``all_nouns`` and
  ``all_noun_classes`` Python-style lists (``"['tap', 'cup']"``, ``"[0, 8]"``).
- ``EPIC_100_video_info.csv``: ``video_id, duration, fps, resolution`` (``1920x1080``).

Bad input: a malformed row (column count, timestamp, integer, list, ``start_frame >
stop_frame``, repeated ``narration_id``) or a class id outside ``[0, num_verbs)`` /
``[0, num_nouns)`` raises DataFormatError naming the file and line.
"""

from __future__ import annotations

import ast
import csv
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tinymem.classes import EK100_NOUNS, EK100_VERBS
from tinymem.errors import data_error
from tinymem.paths import PathType
from tinymem.text_files import open_text

ANNOTATION_COLUMNS = (
    "narration_id",
    "participant_id",
    "video_id",
    "narration_timestamp",
    "start_timestamp",
    "stop_timestamp",
    "start_frame",
    "stop_frame",
    "narration",
    "verb",
    "verb_class",
    "noun",
    "noun_class",
    "all_nouns",
    "all_noun_classes",
)
VIDEO_INFO_COLUMNS = ("video_id", "duration", "fps", "resolution")
TIMESTAMP = re.compile(r"^(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)$")  # HH:mm:ss.SS
SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
SEGMENT_DECIMALS = 2  # start/stop timestamps are written HH:mm:ss.SS ...
NARRATION_DECIMALS = 3  # ... narration timestamps HH:mm:ss.SSS, as in the release
RESOLUTION = re.compile(r"^(\d+)x(\d+)$")
LIST_EXAMPLES = {str: "['tap', 'cup']", int: "[0, 8]"}  # for error messages


@dataclass(frozen=True)
class EpicSegment:
    """One annotated action segment (a row of EPIC_100_train/validation.csv)."""

    narration_id: str
    participant_id: str
    video_id: str
    narration_sec: float | None  # None: the release leaves narration_timestamp empty
    start_sec: float
    stop_sec: float
    start_frame: int  # 0-based, inclusive
    stop_frame: int
    narration: str
    verb: str
    verb_class: int
    noun: str
    noun_class: int
    all_nouns: tuple[str, ...]
    all_noun_classes: tuple[int, ...]
    line: int = 0  # line of the row in its file (1 is the header), 0 when built in code


@dataclass(frozen=True)
class EpicVideoInfo:
    """A row of EPIC_100_video_info.csv."""

    video_id: str
    duration: float  # seconds
    fps: float
    width: int
    height: int


def parse_timestamp(text: str) -> float:
    """Seconds of an ``HH:mm:ss.SS`` timestamp; ValueError when malformed."""
    match = TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError(f"expected a timestamp HH:mm:ss.SS, got {text!r}")
    hours, minutes, seconds = match.groups()
    return int(hours) * SECONDS_PER_HOUR + int(minutes) * SECONDS_PER_MINUTE + float(seconds)


def format_timestamp(seconds: float, decimals: int = SEGMENT_DECIMALS) -> str:
    """``HH:mm:ss`` with ``decimals`` fraction digits (the release's format)."""
    units = round(seconds * 10**decimals)  # whole 10**-decimals seconds
    whole, fraction = divmod(units, 10**decimals)
    hours, rest = divmod(whole, SECONDS_PER_HOUR)
    minutes, secs = divmod(rest, SECONDS_PER_MINUTE)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{fraction:0{decimals}d}"


def _dict_rows(path: PathType, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of each non-blank data row of a CSV whose header row names ``columns``."""
    reader = csv.reader(open_text(path))
    try:
        header = [name.strip() for name in next(reader, [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise data_error(
                path,
                f"expected a header row with columns {list(columns)}, missing {missing}",
                1,
            )
        for fields in reader:
            if not any(cell.strip() for cell in fields):
                continue
            if len(fields) != len(header):
                raise data_error(
                    path,
                    f"expected {len(header)} columns as in the header, got {len(fields)}",
                    reader.line_num,
                )
            yield reader.line_num, {k: v.strip() for k, v in zip(header, fields, strict=True)}
    except csv.Error as e:
        raise data_error(path, f"expected CSV text ({e})", reader.line_num + 1) from None


def _field_int(path: PathType, line: int, row: Mapping[str, str], key: str) -> int:
    """An integer field, or DataFormatError naming it."""
    try:
        return int(row[key])
    except ValueError:
        raise data_error(path, f"expected an integer {key}, got {row[key]!r}", line) from None


def _field_list(path: PathType, line: int, row: Mapping[str, str], key: str, kind: type) -> tuple:
    """A Python-style list field of ``kind`` items (``"['a', 'b']"``, ``"[1, 2]"``)."""
    example = LIST_EXAMPLES[kind]
    expected = f"expected {key} as a list of {kind.__name__} like {example}"
    try:
        value = ast.literal_eval(row[key])
    except (ValueError, SyntaxError):
        raise data_error(path, f"{expected}, got {row[key]!r}", line) from None
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, kind) and not isinstance(v, bool) for v in value
    ):
        raise data_error(path, f"{expected}, got {row[key]!r}", line)
    return tuple(value)


def _check_class(path: PathType, line: int, key: str, value: int, count: int) -> None:
    """Raise unless ``0 <= value < count``."""
    if not 0 <= value < count:
        raise data_error(path, f"expected {key} in [0, {count - 1}], got {value}", line)


def _parse_segment(
    path: PathType, line: int, row: Mapping[str, str], num_verbs: int, num_nouns: int
) -> EpicSegment:
    """Parse and check one annotation row."""
    for key in ("narration_id", "participant_id", "video_id"):
        if not row[key]:
            raise data_error(path, f"expected a non-empty {key}", line)
    times: dict[str, float | None] = {"narration_timestamp": None}
    for key in ("narration_timestamp", "start_timestamp", "stop_timestamp"):
        if key == "narration_timestamp" and not row[key]:
            continue  # kept: the release omits some narration timestamps
        try:
            times[key] = parse_timestamp(row[key])
        except ValueError as e:
            raise data_error(path, f"{key}: {e}", line) from None
    start, stop = (_field_int(path, line, row, k) for k in ("start_frame", "stop_frame"))
    if not 0 <= start <= stop:
        raise data_error(
            path, f"expected 0 <= start_frame <= stop_frame, got {start} and {stop}", line
        )
    if times["start_timestamp"] > times["stop_timestamp"]:
        raise data_error(
            path,
            f"expected start_timestamp <= stop_timestamp, got {row['start_timestamp']} and "
            f"{row['stop_timestamp']}",
            line,
        )
    verb_class = _field_int(path, line, row, "verb_class")
    noun_class = _field_int(path, line, row, "noun_class")
    _check_class(path, line, "verb_class", verb_class, num_verbs)
    _check_class(path, line, "noun_class", noun_class, num_nouns)
    all_nouns = _field_list(path, line, row, "all_nouns", str)
    all_noun_classes = _field_list(path, line, row, "all_noun_classes", int)
    if len(all_nouns) != len(all_noun_classes):
        raise data_error(
            path,
            f"expected all_nouns and all_noun_classes of equal length, got {len(all_nouns)} and "
            f"{len(all_noun_classes)}",
            line,
        )
    for value in all_noun_classes:
        _check_class(path, line, "all_noun_classes item", value, num_nouns)
    return EpicSegment(
        narration_id=row["narration_id"],
        participant_id=row["participant_id"],
        video_id=row["video_id"],
        narration_sec=times["narration_timestamp"],
        start_sec=times["start_timestamp"],
        stop_sec=times["stop_timestamp"],
        start_frame=start,
        stop_frame=stop,
        narration=row["narration"],
        verb=row["verb"],
        verb_class=verb_class,
        noun=row["noun"],
        noun_class=noun_class,
        all_nouns=all_nouns,
        all_noun_classes=all_noun_classes,
        line=line,
    )


def read_epic_annotations(
    path: PathType, num_verbs: int = EK100_VERBS, num_nouns: int = EK100_NOUNS
) -> list[EpicSegment]:
    """Segments of an EPIC_100_{train,validation}.csv file, in file order (errors name the line)."""
    segments = []
    seen: dict[str, int] = {}
    for line, row in _dict_rows(path, ANNOTATION_COLUMNS):
        segment = _parse_segment(path, line, row, num_verbs, num_nouns)
        if segment.narration_id in seen:
            raise data_error(
                path,
                f"expected unique narration_id, {segment.narration_id!r} is also on line "
                f"{seen[segment.narration_id]}",
                line,
            )
        seen[segment.narration_id] = line
        segments.append(segment)
    if not segments:
        raise data_error(path, "empty: expected at least one segment row after the header")
    return segments


def _write_csv(path: PathType, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV file of the release: the header row, then ``rows`` (``\\n`` line ends)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _annotation_row(s: EpicSegment) -> list[Any]:
    """A segment's values in ``ANNOTATION_COLUMNS`` order, in the release's formats."""
    return [
        s.narration_id,
        s.participant_id,
        s.video_id,
        "" if s.narration_sec is None else format_timestamp(s.narration_sec, NARRATION_DECIMALS),
        format_timestamp(s.start_sec),
        format_timestamp(s.stop_sec),
        s.start_frame,
        s.stop_frame,
        s.narration,
        s.verb,
        s.verb_class,
        s.noun,
        s.noun_class,
        str(list(s.all_nouns)),
        str(list(s.all_noun_classes)),
    ]


def write_epic_annotations(path: PathType, segments: Iterable[EpicSegment]) -> None:
    """Write segments as an EPIC_100 annotation CSV (header row, the release's formats)."""
    _write_csv(path, ANNOTATION_COLUMNS, map(_annotation_row, segments))


def read_video_info(path: PathType) -> dict[str, EpicVideoInfo]:
    """video_id -> duration, fps and resolution of EPIC_100_video_info.csv."""
    infos: dict[str, EpicVideoInfo] = {}
    for line, row in _dict_rows(path, VIDEO_INFO_COLUMNS):
        values = {}
        for key in ("duration", "fps"):
            try:
                values[key] = float(row[key])
            except ValueError:
                values[key] = math.nan
            if not math.isfinite(values[key]) or values[key] <= 0:
                raise data_error(path, f"expected a positive number {key}, got {row[key]!r}", line)
        size = RESOLUTION.match(row["resolution"])
        if size is None:
            raise data_error(
                path, f"expected resolution as WIDTHxHEIGHT, got {row['resolution']!r}", line
            )
        if row["video_id"] in infos:
            raise data_error(path, f"expected unique video_id, got {row['video_id']!r} again", line)
        infos[row["video_id"]] = EpicVideoInfo(
            video_id=row["video_id"],
            duration=values["duration"],
            fps=values["fps"],
            width=int(size.group(1)),
            height=int(size.group(2)),
        )
    return infos


def write_video_info(path: PathType, infos: Iterable[EpicVideoInfo]) -> None:
    """Write EPIC_100_video_info.csv."""
    rows = ([i.video_id, i.duration, i.fps, f"{i.width}x{i.height}"] for i in infos)
    _write_csv(path, VIDEO_INFO_COLUMNS, rows)


def segment_frames(segment: EpicSegment, fps: float | None) -> tuple[int, int]:
    """0-based first and last frame of a segment in a source at ``fps``.

    ``fps=None`` (a frame folder): the annotated ``start_frame`` / ``stop_frame``. Otherwise (a
    video file) the frames at ``start_sec`` / ``stop_sec``, ``round(seconds * fps)``.
    """
    if fps is None:
        return segment.start_frame, segment.stop_frame
    return round(segment.start_sec * fps), round(segment.stop_sec * fps)


def temporal_order(segments: Iterable[EpicSegment]) -> list[EpicSegment]:
    """Segments grouped by video (sorted ids), each video's in time order (start, stop, line)."""
    return sorted(segments, key=lambda s: (s.video_id, s.start_frame, s.stop_frame, s.line))

"""Readers and writers for the AVA v2.2 files: annotations, proposals, label maps, predictions.

All CSV files have no header line. Boxes are ``x1,y1,x2,y2`` normalized to [0, 1], origin
top-left; timestamps are integer seconds (written zero-padded to 4 digits).

``read_annotation_rows`` / ``read_detection_rows`` with ``official=True`` (what the evaluator
uses) accept what the official ActivityNet reader accepts and otherwise refuse: rows of 7
columns (no score / person id; the official reader gives them score 1.0), and boxes that are
empty, reversed or outside [0, 1] (any float; the evaluator drops empty detection boxes after
the per-keyframe cap, as the official one does). Still refused, with the file and line: other
column counts, unparsable numbers, an empty video id, a negative timestamp, and a non-finite
score (the official ranking of NaN scores depends on the row order).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tinymem.errors import data_error
from tinymem.paths import PathType
from tinymem.text_files import open_text, read_bytes, read_text

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 normalized to [0, 1]

ANNOTATION_COLUMNS = "video_id,timestamp,x1,y1,x2,y2,action_id,person_id"
PROPOSAL_COLUMNS = "video_id,timestamp,x1,y1,x2,y2,,score"
DETECTION_COLUMNS = "video_id,timestamp,x1,y1,x2,y2,action_id,score"
EXCLUDED_COLUMNS = "video_id,timestamp"
BOX_DECIMALS = 3
SCORE_DECIMALS = 6
TIMESTAMP_DIGITS = 4
BOX_NAMES = ("x1", "y1", "x2", "y2")
LABEL_MAP_BLOCKS = ("item", "label")  # the two pbtxt dialects
AVA_NUM_ACTIONS = 80  # action ids 1..80; a model's output index is id - 1
# The 60 ids of ava_action_list_v2.2_for_activitynet_2019.pbtxt, the classes that are evaluated.
AVA_EVALUATED_IDS = (
    *(1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 20, 22, 24, 26, 27, 28, 29, 30, 34),
    *(36, 37, 38, 41, 43, 45, 46, 47, 48, 49, 51, 52, 54, 56, 57, 58, 59, 60, 61, 62, 63),
    *(64, 65, 66, 67, 68, 69, 70, 72, 73, 74, 76, 77, 78, 79, 80),
)
LABEL_MAP_ID_KEYS = ("id", "label_id")


@dataclass
class AvaBox:
    """One person box at a keyframe with its action ids (empty for proposals) and score."""

    box: Box
    labels: list[int]
    person_id: int = -1
    score: float = 1.0


Keyframes = dict[tuple[str, int], list[AvaBox]]  # (video_id, timestamp seconds) -> boxes


@dataclass
class Detection:
    """One scored (box, action) prediction at a keyframe, a row of an AVA prediction CSV."""

    video_id: str
    timestamp: int
    box: Box
    action_id: int
    score: float


# ---------------------------------------------------------------------------------------------
# CSV parsing helpers


def _csv_rows(path: PathType) -> Iterator[tuple[int, list[str]]]:
    """Yield (1-based line number, stripped fields) of each non-blank CSV row of ``path``."""
    reader = csv.reader(open_text(path))
    try:
        for row in reader:
            fields = [cell.strip() for cell in row]
            if any(fields):
                yield reader.line_num, fields
    except csv.Error as e:
        raise data_error(path, f"expected CSV text ({e})", reader.line_num + 1) from None


def _require_rows(path: PathType, count: int, columns: str) -> None:
    """An input file without a single row is an error, not an empty dataset."""
    if count == 0:
        raise data_error(path, f"empty: expected rows {columns}")


def _check_columns(path: PathType, line: int, row: list[str], columns: str) -> None:
    """Raise unless ``row`` has as many fields as ``columns`` names."""
    expected = len(columns.split(","))
    if len(row) != expected:
        raise data_error(path, f"expected {expected} columns ({columns}), got {len(row)}", line)


def _parse_int(path: PathType, line: int, text: str, what: str) -> int:
    """Parse an integer field or raise a DataFormatError naming the field."""
    try:
        return int(text)
    except ValueError:
        raise data_error(path, f"expected an integer {what}, got {text!r}", line) from None


def _parse_score(path: PathType, line: int, text: str) -> float:
    """Parse a finite float score."""
    try:
        score = float(text)
    except ValueError:
        score = math.nan
    if not math.isfinite(score):
        raise data_error(path, f"expected a finite float score, got {text!r}", line)
    return score


def _parse_key(path: PathType, line: int, row: list[str]) -> tuple[str, int]:
    """Parse the leading ``video_id,timestamp`` fields."""
    if not row[0]:
        raise data_error(path, "expected a non-empty video_id", line)
    timestamp = _parse_int(path, line, row[1], "timestamp (seconds)")
    if timestamp < 0:
        raise data_error(path, f"expected a non-negative timestamp, got {timestamp}", line)
    return row[0], timestamp


def _parse_box(path: PathType, line: int, fields: list[str], official: bool = False) -> Box:
    """Parse four ``x1,y1,x2,y2`` fields in [0, 1] with x1 <= x2 and y1 <= y2 (any floats when
    ``official``)."""
    values = []
    for name, text in zip(BOX_NAMES, fields, strict=True):
        try:
            value = float(text)
        except ValueError:
            raise data_error(path, f"expected a float {name}, got {text!r}", line) from None
        if official:
            values.append(value)
            continue
        if not 0.0 <= value <= 1.0:
            raise data_error(path, f"expected {name} in [0, 1], got {text!r}", line)
        values.append(value)
    x1, y1, x2, y2 = values
    if not official and (x1 > x2 or y1 > y2):
        raise data_error(path, f"expected x1 <= x2 and y1 <= y2, got box {tuple(fields)}", line)
    return x1, y1, x2, y2


def _format_box(box: Box) -> list[str]:
    """Format a box with the AVA precision."""
    return [f"{v:.{BOX_DECIMALS}f}" for v in box]


def _format_timestamp(timestamp: int) -> str:
    """Zero-pad a timestamp to the AVA width."""
    return f"{timestamp:0{TIMESTAMP_DIGITS}d}"


def _write_rows(path: PathType, rows: Iterable[list[str]]) -> None:
    """Write CSV rows with Unix line endings."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerows(rows)


# ---------------------------------------------------------------------------------------------
# Annotations, proposals, excluded timestamps, detections


def read_annotations(
    path: PathType, allowed_classes: set[int] | None = None
) -> tuple[Keyframes, int]:
    """Read a ground-truth CSV; rows of one (video, ts, box, person) merge into one AvaBox.

    Returns the keyframes and the number of rows skipped because their action id is not in
    ``allowed_classes`` (nothing is skipped when it is None).
    """
    keyframes: Keyframes = {}
    merged: dict[tuple[str, int, Box, int], AvaBox] = {}
    skipped = 0
    for line, row in _csv_rows(path):
        _check_columns(path, line, row, ANNOTATION_COLUMNS)
        video_id, timestamp = _parse_key(path, line, row)
        box = _parse_box(path, line, row[2:6])
        action_id = _parse_int(path, line, row[6], "action_id")
        person_id = _parse_int(path, line, row[7], "person_id")
        if allowed_classes is not None and action_id not in allowed_classes:
            skipped += 1
            continue
        entry = merged.get((video_id, timestamp, box, person_id))
        if entry is None:
            entry = AvaBox(box=box, labels=[], person_id=person_id)
            merged[(video_id, timestamp, box, person_id)] = entry
            keyframes.setdefault((video_id, timestamp), []).append(entry)
        if action_id not in entry.labels:
            entry.labels.append(action_id)
    _require_rows(path, len(keyframes) + skipped, ANNOTATION_COLUMNS)
    return keyframes, skipped


def write_annotations(
    path: PathType, keyframes: Mapping[tuple[str, int], Iterable[AvaBox]]
) -> None:
    """Write a ground-truth CSV, one row per (box, action id); the inverse of read_annotations."""
    rows = []
    for (video_id, timestamp), boxes in keyframes.items():
        for entry in boxes:
            if not entry.labels:
                raise ValueError(f"box {entry.box} of {video_id}@{timestamp} has no action ids")
            for action_id in entry.labels:
                rows.append(
                    [
                        video_id,
                        _format_timestamp(timestamp),
                        *_format_box(entry.box),
                        str(action_id),
                        str(entry.person_id),
                    ]
                )
    _write_rows(path, rows)


def read_proposals(path: PathType, min_score: float = 0.0) -> tuple[Keyframes, int]:
    """Read person proposals ``video_id,timestamp,x1,y1,x2,y2,,score``.

    Returns boxes with ``labels=[]`` and their score, and the number skipped below min_score.
    """
    keyframes: Keyframes = {}
    skipped = 0
    for line, row in _csv_rows(path):
        _check_columns(path, line, row, PROPOSAL_COLUMNS)
        video_id, timestamp = _parse_key(path, line, row)
        box = _parse_box(path, line, row[2:6])
        if row[6]:
            raise data_error(path, f"expected an empty 7th column, got {row[6]!r}", line)
        score = _parse_score(path, line, row[7])
        if score < min_score:
            skipped += 1
            continue
        keyframes.setdefault((video_id, timestamp), []).append(
            AvaBox(box=box, labels=[], score=score)
        )
    _require_rows(path, len(keyframes) + skipped, PROPOSAL_COLUMNS)
    return keyframes, skipped


def write_proposals(path: PathType, keyframes: Mapping[tuple[str, int], Iterable[AvaBox]]) -> None:
    """Write person proposals, one row per box (labels ignored); the inverse of read_proposals."""
    rows = [
        [
            video_id,
            _format_timestamp(timestamp),
            *_format_box(entry.box),
            "",
            f"{entry.score:.{SCORE_DECIMALS}f}",
        ]
        for (video_id, timestamp), boxes in keyframes.items()
        for entry in boxes
    ]
    _write_rows(path, rows)


def read_excluded_timestamps(path: PathType) -> set[tuple[str, int]]:
    """Read ``video_id,timestamp`` rows of keyframes excluded from evaluation."""
    excluded = set()
    for line, row in _csv_rows(path):
        _check_columns(path, line, row, EXCLUDED_COLUMNS)
        excluded.add(_parse_key(path, line, row))
    return excluded


def write_detections(path: PathType, detections: Iterable[Detection]) -> None:
    """Write an AVA prediction CSV ``video_id,timestamp,x1,y1,x2,y2,action_id,score``."""
    rows = [
        [
            d.video_id,
            _format_timestamp(d.timestamp),
            *_format_box(d.box),
            str(d.action_id),
            f"{d.score:.{SCORE_DECIMALS}f}",
        ]
        for d in detections
    ]
    _write_rows(path, rows)


def read_detections(path: PathType) -> list[Detection]:
    """Read an AVA prediction CSV written by write_detections (or the official tools)."""
    detections = []
    for line, row in _csv_rows(path):
        _check_columns(path, line, row, DETECTION_COLUMNS)
        video_id, timestamp = _parse_key(path, line, row)
        detections.append(
            Detection(
                video_id=video_id,
                timestamp=timestamp,
                box=_parse_box(path, line, row[2:6]),
                action_id=_parse_int(path, line, row[6], "action_id"),
                score=_parse_score(path, line, row[7]),
            )
        )
    return detections


# ---------------------------------------------------------------------------------------------
# Whole files as columns (fast enough for AVA's 2M-row detection files)

# Bytes of a plain CSV: printable ASCII except space and quote, and newlines. A file with any
# other byte goes to the row-by-row parser, whose CSV semantics (quoting, stripped fields) are
# the definition.
_PLAIN_BYTES = bytes(c for c in range(0x21, 0x7F) if c != ord('"')) + b"\n"
MAX_FAST_LINE = 256  # longer lines go row by row (the fast path sizes a bytes column by them)
MAX_FAST_TIMESTAMP = 2**31  # keyframe codes video * (max timestamp + 1) + timestamp fit int64


@dataclass
class AvaRows:
    """The rows of an annotation or detection CSV as columns, in file order (no merging)."""

    keyframes: list[tuple[str, int]]  # distinct (video_id, timestamp), by first appearance
    keyframe: np.ndarray  # [N] int64 index into keyframes
    boxes: np.ndarray  # [N, 4] float64 x1, y1, x2, y2 in [0, 1]
    action_id: np.ndarray  # [N] int64
    score: np.ndarray  # [N] float64; 1.0 for groundtruth
    person_id: np.ndarray  # [N] int64; -1 for detections
    line: np.ndarray  # [N] int64 1-based line in the file (position in the input when built)
    short: np.ndarray  # [N] bool: a 7-column row (no score / person id; the official 1.0)

    def __len__(self) -> int:
        return len(self.keyframe)

    @classmethod
    def build(
        cls,
        keys: Sequence[tuple[str, int]],
        boxes: Sequence[Box] | np.ndarray,
        action_id: Sequence[int] | np.ndarray,
        score: Sequence[float] | np.ndarray | None = None,
        person_id: Sequence[int] | np.ndarray | None = None,
        line: Sequence[int] | np.ndarray | None = None,
        short: Sequence[bool] | np.ndarray | None = None,
    ) -> AvaRows:
        """Rows from per-row keys and values (score defaults to 1.0, person_id to -1, line to
        the position from 1, short to False)."""
        index: dict[tuple[str, int], int] = {}
        codes = np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)
        count = len(codes)
        return cls(
            keyframes=list(index),
            keyframe=codes,
            boxes=np.asarray(boxes, dtype=np.float64).reshape(count, 4),
            action_id=np.asarray(action_id, dtype=np.int64).reshape(count),
            score=np.ones(count) if score is None else np.asarray(score, np.float64),
            person_id=np.full(count, -1, np.int64)
            if person_id is None
            else np.asarray(person_id, np.int64),
            line=np.arange(1, count + 1) if line is None else np.asarray(line, np.int64),
            short=np.zeros(count, bool) if short is None else np.asarray(short, bool),
        )

    @classmethod
    def from_keyframes(cls, keyframes: Mapping[tuple[str, int], Iterable[AvaBox]]) -> AvaRows:
        """One row per (box, action id) of merged keyframes, as write_annotations writes them."""
        rows = [
            (key, entry.box, label, entry.person_id)
            for key, entries in keyframes.items()
            for entry in entries
            for label in entry.labels
        ]
        keys, boxes, labels, persons = zip(*rows, strict=True) if rows else ((), (), (), ())
        return cls.build(keys, boxes, labels, person_id=persons)

    @classmethod
    def from_detections(cls, detections: Iterable[Detection]) -> AvaRows:
        """One row per detection."""
        items = list(detections)
        return cls.build(
            [(d.video_id, d.timestamp) for d in items],
            [d.box for d in items],
            [d.action_id for d in items],
            score=[d.score for d in items],
        )


def read_annotation_rows(path: PathType, official: bool = False) -> AvaRows:
    """Read a groundtruth CSV as columns, every row kept (read_annotations merges boxes).

    Raises DataFormatError naming the file and line for any row read_annotations rejects
    (``official``: any row the official evaluator rejects, see the module docstring), and for a
    file without rows.
    """
    rows = _read_rows(path, ANNOTATION_COLUMNS, official)
    _require_rows(path, len(rows), ANNOTATION_COLUMNS)
    return rows


def read_detection_rows(path: PathType, official: bool = False) -> AvaRows:
    """Read a prediction CSV ``video_id,timestamp,x1,y1,x2,y2,action_id,score`` as columns.

    Raises DataFormatError naming the file and line for any row read_detections rejects
    (``official``: any row the official evaluator rejects, see the module docstring).
    """
    return _read_rows(path, DETECTION_COLUMNS, official)


def _read_rows(path: PathType, columns: str, official: bool) -> AvaRows:
    """Columns of a whole CSV: a vectorised parse when the file is plain, else row by row."""
    data = read_bytes(path).replace(b"\r\n", b"\n")
    rows = None if data.translate(None, _PLAIN_BYTES) else _fast_rows(data, columns, official)
    return rows if rows is not None else _slow_rows(path, columns, official)


def _fast_rows(data: bytes, columns: str, official: bool) -> AvaRows | None:
    """Parse plain rows in one numpy pass; None when any row needs the row-by-row parser.

    Only a shortcut: whatever it cannot vouch for goes to ``_slow_rows``, which names the line.
    """
    if not data.strip():
        return AvaRows.build([], np.zeros((0, 4)), [])
    newlines = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n"))
    longest = int(np.diff(newlines, prepend=-1, append=len(data)).max()) - 1  # longest line
    if longest > MAX_FAST_LINE:
        return None
    last = np.float64 if columns == DETECTION_COLUMNS else np.int64  # score or person_id
    numbers = [(n, np.float64) for n in BOX_NAMES]
    dtype = np.dtype(
        [("v", f"S{longest}"), ("t", np.int64), *numbers, ("a", np.int64), ("s", last)]
    )
    try:
        values = np.loadtxt(
            io.BytesIO(data), delimiter=",", dtype=dtype, comments=None, encoding="latin1", ndmin=1
        )
    except ValueError:  # wrong column count or an unparsable field
        return None
    videos, timestamps = values["v"], values["t"]
    boxes = np.stack([values[n] for n in BOX_NAMES], axis=1)  # [N, 4]
    ends = np.append(newlines, len(data))  # [L] end of every line
    lengths = np.diff(ends, prepend=-1) - 1  # [L]
    lines = np.flatnonzero(lengths > 0) + 1  # [N] 1-based numbers of the non-blank lines
    plain = (
        len(lines) == len(values)
        and bool(np.all(videos != b""))
        and (official or bool(np.all((boxes >= 0.0) & (boxes <= 1.0))))  # also rejects NaN
        and (official or bool(np.all((boxes[:, 0] <= boxes[:, 2]) & (boxes[:, 1] <= boxes[:, 3]))))
        and bool(np.all((timestamps >= 0) & (timestamps < MAX_FAST_TIMESTAMP)))
        and bool(np.all(np.isfinite(values["s"])))
    )
    if not plain:
        return None
    count = len(values)
    # video codes: ids come in runs; a dict over the runs, not the rows
    starts = np.concatenate([[0], np.flatnonzero(videos[1:] != videos[:-1]) + 1])
    names: dict[str, int] = {}
    run_codes = [names.setdefault(v.decode("ascii"), len(names)) for v in videos[starts]]
    video_code = np.repeat(run_codes, np.diff(np.append(starts, count)))  # [N]
    combined = video_code * MAX_FAST_TIMESTAMP + timestamps  # [N] unique per keyframe
    unique, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    order = np.argsort(first)  # unique keyframes by first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    video_names = list(names)
    is_detection = columns == DETECTION_COLUMNS
    return AvaRows(
        keyframes=[
            (video_names[int(k) // MAX_FAST_TIMESTAMP], int(k) % MAX_FAST_TIMESTAMP)
            for k in unique[order]
        ],
        keyframe=rank[inverse],
        boxes=boxes,
        action_id=values["a"],
        score=values["s"].astype(np.float64) if is_detection else np.ones(count),
        person_id=np.full(count, -1, np.int64) if is_detection else values["s"],
        line=lines,
        short=np.zeros(count, bool),
    )


def _slow_rows(path: PathType, columns: str, official: bool) -> AvaRows:
    """Parse row by row with the CSV module and the per-field checks (names file and line)."""
    keys, boxes, actions, last, lines, short = [], [], [], [], [], []
    is_detection = columns == DETECTION_COLUMNS
    for line, row in _csv_rows(path):
        expected = len(columns.split(","))
        is_short = official and len(row) == expected - 1
        if official and len(row) not in (expected, expected - 1):
            raise data_error(
                path,
                f"expected {expected} columns ({columns}), or {expected - 1} without the last, "
                f"got {len(row)}",
                line,
            )
        if not is_short:
            _check_columns(path, line, row, columns)
        keys.append(_parse_key(path, line, row))
        boxes.append(_parse_box(path, line, row[2:6], official))
        actions.append(_parse_int(path, line, row[6], "action_id"))
        if is_short:
            last.append(1.0 if is_detection else -1)  # the official score 1.0; no person id
        elif is_detection:
            last.append(_parse_score(path, line, row[7]))
        else:
            last.append(_parse_int(path, line, row[7], "person_id"))
        lines.append(line)
        short.append(is_short)
    values = {"score" if is_detection else "person_id": last}
    boxes_array = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    return AvaRows.build(keys, boxes_array, actions, line=lines, short=short, **values)


# ---------------------------------------------------------------------------------------------
# Label maps (protobuf text format)

# whitespace | comment | quoted string | punctuation | bare word
_PBTXT_TOKEN = re.compile(r'(\s+)|(#[^\n]*)|("(?:[^"\\\n]|\\.)*")|([{}:])|([^\s{}:"#]+)')


def _pbtxt_tokens(path: PathType, text: str) -> list[tuple[str, int]]:
    """Split protobuf text into (token, 1-based line) pairs, dropping whitespace and comments."""
    tokens = []
    line = 1
    pos = 0
    while pos < len(text):
        match = _PBTXT_TOKEN.match(text, pos)
        if match is None:
            raise data_error(path, "expected a terminated quoted string", line)
        if match.lastindex not in (1, 2):
            tokens.append((match.group(), line))
        line += match.group().count("\n")
        pos = match.end()
    return tokens


def _unquote(token: str) -> str:
    """Strip the quotes of a pbtxt string token and undo backslash escapes."""
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def read_label_map(path: PathType) -> dict[int, str]:
    """Read a pbtxt label map in either dialect: ``item {name id}`` or ``label {name label_id}``."""
    tokens = _pbtxt_tokens(path, read_text(path))
    names: dict[int, str] = {}
    pos = 0

    def take(what: str) -> tuple[str, int]:
        nonlocal pos
        if pos >= len(tokens):
            last_line = tokens[-1][1] if tokens else 1
            raise data_error(path, f"expected {what}, got end of file", last_line)
        pos += 1
        return tokens[pos - 1]

    while pos < len(tokens):
        block, block_line = take("a block")
        if block not in LABEL_MAP_BLOCKS:
            raise data_error(
                path, f"expected a block 'item {{' or 'label {{', got {block!r}", block_line
            )
        token, line = take("'{'")
        if token == ":":  # `item: { ... }` is valid text format too
            token, line = take("'{'")
        if token != "{":
            raise data_error(path, f"expected '{{' after {block!r}, got {token!r}", line)
        fields: dict[str, str] = {}
        while True:
            key, _ = take("a field or '}'")
            if key == "}":
                break
            colon, line = take("':'")
            if colon != ":":
                raise data_error(path, f"expected ':' after field {key!r}, got {colon!r}", line)
            value, line = take(f"a value for field {key!r}")
            if value in ("{", "}", ":"):
                raise data_error(path, f"expected a value for field {key!r}, got {value!r}", line)
            fields[key] = value
        name = fields.get("name")
        if name is None or not name.startswith('"'):
            raise data_error(path, f"expected a quoted name in this {block!r} block", block_line)
        id_text = next((fields[k] for k in LABEL_MAP_ID_KEYS if k in fields), None)
        if id_text is None:
            raise data_error(
                path, f"expected 'id' or 'label_id' in this {block!r} block", block_line
            )
        label_id = _parse_int(path, block_line, id_text, "id")
        if label_id in names:
            raise data_error(path, f"expected unique ids, got id {label_id} twice", block_line)
        names[label_id] = _unquote(name)
    if not names:
        raise data_error(path, "expected at least one 'item { name: ... id: ... }' entry")
    return names


def write_label_map(path: PathType, names: Mapping[int, str]) -> None:
    """Write a label map in the ``item { name: "..." id: N }`` dialect."""
    with open(path, "w") as f:
        for label_id, name in sorted(names.items()):
            quoted = name.replace("\\", "\\\\").replace('"', '\\"')
            f.write(f'item {{\n  name: "{quoted}"\n  id: {label_id}\n}}\n')


__all__ = [
    "AVA_EVALUATED_IDS",
    "AVA_NUM_ACTIONS",
    "AvaBox",
    "AvaRows",
    "Box",
    "Detection",
    "Keyframes",
    "read_annotation_rows",
    "read_annotations",
    "read_detection_rows",
    "read_detections",
    "read_excluded_timestamps",
    "read_label_map",
    "read_proposals",
    "write_annotations",
    "write_detections",
    "write_label_map",
    "write_proposals",
]

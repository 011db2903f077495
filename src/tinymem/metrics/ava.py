"""AVA frame-level mAP at IoU 0.5, computed as the official ActivityNet 2019 evaluator does.

The official script (``get_ava_performance.py``: a PASCAL VOC evaluator from the TensorFlow
object-detection code) is reproduced rule by rule and vectorised with numpy. Each rule has a
hand-made test with a known answer in ``tests/metrics/test_ava.py``, and a randomised test compares
everything with a row-by-row reference on inputs full of ties.

1. Classes: only the label map's ids are evaluated; groundtruth and detection rows of other ids
   are ignored before anything else (counted).
2. Excluded keyframes are removed from both the groundtruth and the detections (counted).
3. Cap: per keyframe, at most the 50 highest-scoring detection rows (of evaluated classes) are
   kept. Ties at the cut follow the official min-heap: once 50 rows are held, a later row
   replaces the lowest only with a strictly higher score, and "lowest" is the smallest tuple
   ``(score, action_id, y1, x1, y2, x2)``. Keyframes where such ties matter are replayed row by
   row; all others are cut in one vectorised pass.
4. Empty boxes: kept detection rows with ``x1 >= x2`` or ``y1 >= y2`` are then dropped, neither
   true nor false positives (counted).
5. Matching, per keyframe and class, detections in descending score order: each takes the
   groundtruth box of its class with the highest IoU (the first such box on a tie). It is a true
   positive when that IoU is >= 0.5 (exactly 0.5 is a hit) and that box is still free, else a
   false positive, even if another free box overlaps it enough. So each groundtruth box is
   matched at most once and duplicate detections are false positives.
6. IoU of the boxes as written (normalised coordinates): intersection over union, no +1 term.
7. Detections on keyframes without groundtruth of their class are false positives.
8. AP per class: the class's detections of all keyframes are ranked by descending score (ties in
   the order numpy's default argsort gives the official concatenation: keyframes by first
   appearance in the detection file, then descending score), and VOC all-point interpolation
   is applied (precision made monotone, summed over recall steps). The groundtruth count is
   the number of groundtruth rows of the class (a duplicated row counts twice).
9. Mean: a class with groundtruth but no detection scores 0; classes without groundtruth are
   left out of the mean (and listed). If no class has groundtruth, ValueError (the official
   script prints NaN).

Within a keyframe, groundtruth boxes keep the official reader's order (descending person id,
then heap order); it matters only when a detection overlaps two boxes of its class equally.

Input the official reader accepts is accepted here too (``read_*_rows(official=True)``):
rows of 7 columns score 1.0 (a groundtruth row without a person id sorts as 1.0), and boxes
may be empty, reversed or outside [0, 1]. Groundtruth boxes are never dropped (an empty one
can never be matched but still counts). Every row left out is counted with the file line of
the first one of its kind (``FrameMAP.first_line``); ``evaluate_ava_files(strict=True)``
turns any detection row left out or read differently (7 columns) into an error naming its
line. Groundtruth rows of classes outside the label map are only reported: the official
v2.2 groundtruth holds all 80 classes and the evaluated label map 60.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike

import numpy as np

from tinymem.data.ava.formats import (
    AvaBox,
    AvaRows,
    Detection,
    read_annotation_rows,
    read_detection_rows,
    read_excluded_timestamps,
    read_label_map,
)
from tinymem.errors import data_error

IOU_THRESHOLD = 0.5  # the official AVA matching threshold (IoU >= 0.5 is a hit)
MAX_DETECTIONS_PER_KEYFRAME = 50  # the official reader keeps the 50 best rows per keyframe
PERCENT = 100.0
NO_BOX = np.iinfo(np.int64).max  # placeholder offset, larger than any real one

KeyframeKey = tuple[str, int]  # (video_id, timestamp)


@dataclass
class FrameMAP:
    """Result of an AVA frame-mAP evaluation: mean and per-class AP plus what was left out."""

    mean_ap: float  # mean over the evaluated classes with groundtruth
    per_class: dict[int, float]  # classes with groundtruth only
    classes_without_groundtruth: list[int]  # evaluated classes absent from the groundtruth
    num_detections_excluded: int = 0  # rows of evaluated classes on excluded keyframes
    num_detections_other_class: int = 0  # rows of classes outside the evaluated ones
    num_detections_over_capacity: int = 0  # beyond the per-keyframe cap (lowest scores)
    num_detections_empty_box: int = 0  # kept rows with x1 >= x2 or y1 >= y2
    num_detections_without_groundtruth: int = 0  # on keyframes without groundtruth: FPs
    num_groundtruth_other_class: int = 0  # groundtruth rows outside the evaluated classes
    num_groundtruth_excluded: int = 0  # groundtruth rows on excluded keyframes
    num_detections_short: int = 0  # 7-column detection rows, scored 1.0
    num_groundtruth_short: int = 0  # 7-column groundtruth rows, ordered as person id 1.0
    first_line: dict[str, int] = field(default_factory=dict)  # count field -> first file line

    def counts(self) -> dict[str, tuple[str, int]]:
        """Count field -> (what it counts, count) for every row left out or read differently."""
        return {
            "num_detections_excluded": (
                "detections on excluded keyframes (ignored)",
                self.num_detections_excluded,
            ),
            "num_detections_other_class": (
                "detections of classes not evaluated (ignored)",
                self.num_detections_other_class,
            ),
            "num_detections_over_capacity": (
                f"detections beyond {MAX_DETECTIONS_PER_KEYFRAME} per keyframe (ignored)",
                self.num_detections_over_capacity,
            ),
            "num_detections_empty_box": (
                "detections with an empty box, x1 >= x2 or y1 >= y2 (ignored)",
                self.num_detections_empty_box,
            ),
            "num_detections_short": (
                "detections of 7 columns, no score (scored 1.0)",
                self.num_detections_short,
            ),
            "num_detections_without_groundtruth": (
                "detections on keyframes without groundtruth (false positives)",
                self.num_detections_without_groundtruth,
            ),
            "num_groundtruth_other_class": (
                "groundtruth rows of classes not evaluated (ignored)",
                self.num_groundtruth_other_class,
            ),
            "num_groundtruth_excluded": (
                "groundtruth rows on excluded keyframes (ignored)",
                self.num_groundtruth_excluded,
            ),
            "num_groundtruth_short": (
                "groundtruth rows of 7 columns, no person id (ordered as 1.0)",
                self.num_groundtruth_short,
            ),
        }

    def table(self, names: Mapping[int, str] | None = None) -> str:
        """Human-readable per-class AP table in percent, with the mean and the left-out counts."""
        names = names or {}
        width = max([len("class"), *(len(names.get(c, "")) for c in self.per_class)])
        lines = [f"{'id':>4}  {'class':<{width}}  {'AP (%)':>7}"]
        for class_id, ap in sorted(self.per_class.items()):
            lines.append(f"{class_id:>4}  {names.get(class_id, ''):<{width}}  {ap * PERCENT:7.2f}")
        lines.append(f"{'':>4}  {'mean':<{width}}  {self.mean_ap * PERCENT:7.2f}")
        if self.classes_without_groundtruth:
            ids = " ".join(str(c) for c in self.classes_without_groundtruth)
            lines.append(f"classes without groundtruth (not in the mean): {ids}")
        for key, (what, count) in self.counts().items():
            if count:
                where = f", first at line {self.first_line[key]}" if key in self.first_line else ""
                lines.append(f"{what}: {count}{where}")
        return "\n".join(lines)


def average_precision(
    scores: Sequence[float] | np.ndarray,
    is_true_positive: Sequence[bool] | np.ndarray,
    num_groundtruth: int,
) -> float:
    """PASCAL VOC all-point average precision of detections against ``num_groundtruth`` boxes.

    Detections are ranked by descending score, ties as ``np.argsort(scores)[::-1]`` orders them
    (as the official code does). Precision is made monotone from the right and summed over the
    recall steps, recall padded with 0 and 1, precision with 0 and 0. No detections give 0.0;
    so does ``num_groundtruth == 0`` (never NaN): ``frame_map`` leaves such classes out.
    """
    scores = np.asarray(scores, dtype=np.float64)
    is_true_positive = np.asarray(is_true_positive, dtype=bool)
    if scores.ndim != 1 or scores.shape != is_true_positive.shape:
        raise ValueError(
            f"scores and is_true_positive must be 1-D of equal length, "
            f"got shapes {scores.shape} and {is_true_positive.shape}"
        )
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite (no NaN or infinity)")
    num_true = int(is_true_positive.sum())
    if num_groundtruth < num_true:
        raise ValueError(
            f"{num_true} true positives cannot match only {num_groundtruth} groundtruth boxes"
        )
    if num_groundtruth == 0 or len(scores) == 0:
        return 0.0
    ranked = is_true_positive[np.argsort(scores)[::-1]].astype(np.int64)  # (N,)
    true_positives = np.cumsum(ranked)
    precision = true_positives / np.arange(1, len(ranked) + 1)
    recall = true_positives / num_groundtruth
    recall = np.concatenate([[0.0], recall, [1.0]])  # (N + 2,)
    precision = np.concatenate([[0.0], precision, [0.0]])  # (N + 2,)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


# ---------------------------------------------------------------------------------------------
# The pieces of frame_map


@dataclass
class _Boxes:
    """Rows of one side after selection, ordered; ``cls`` indexes the evaluated classes."""

    keyframe: np.ndarray  # [N] int64 keyframe index of the side's AvaRows
    cls: np.ndarray  # [N] int64 index into the sorted evaluated class ids
    boxes: np.ndarray  # [N, 4] float64 x1, y1, x2, y2
    score: np.ndarray  # [N] float64
    row: np.ndarray  # [N] int64 row of the side's AvaRows

    def select(self, mask: np.ndarray) -> _Boxes:
        """The rows where ``mask`` is set, in order."""
        return _Boxes(
            self.keyframe[mask], self.cls[mask], self.boxes[mask], self.score[mask], self.row[mask]
        )


def _from_rows(table: AvaRows, rows: np.ndarray, classes: np.ndarray, score: np.ndarray) -> _Boxes:
    """``_Boxes`` of the given rows of a table, in the given order."""
    return _Boxes(
        table.keyframe[rows],
        np.searchsorted(classes, table.action_id[rows]),
        table.boxes[rows],
        score,
        rows,
    )


def _heap_order(
    rows: np.ndarray, table: AvaRows, sort_value: np.ndarray, capacity: int
) -> list[int]:
    """One keyframe as the official reader leaves it; returns the rows kept, in its order.

    ``rows`` (file order) are pushed one by one as (value, action, y1, x1, y2, x2) tuples; with
    a capacity, a full heap swaps its smallest tuple for a row only when the row's value is
    strictly larger. The result is sorted by descending value, stable over the heap's array
    order. Rows are told apart by their tuple objects, so equal tuples (identical rows) are
    interchangeable.
    """
    heap: list[tuple[float, int, float, float, float, float]] = []
    x1, y1, x2, y2 = table.boxes[rows].T.tolist()
    entries = list(
        zip(sort_value[rows].tolist(), table.action_id[rows].tolist(), y1, x1, y2, x2, strict=True)
    )
    row_of = {id(entry): row for entry, row in zip(entries, rows.tolist(), strict=True)}
    for entry in entries:
        if capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, entry)
        elif entry[0] > heap[0][0]:
            heapq.heapreplace(heap, entry)
    return [row_of[id(entry)] for entry in sorted(heap, key=lambda entry: -entry[0])]


def _replay(
    table: AvaRows, rows: np.ndarray, sort_value: np.ndarray, capacity: int
) -> tuple[np.ndarray, np.ndarray]:
    """Replay keyframes row by row with ``_heap_order``.

    Returns the rows kept, keyframe by keyframe in the official order, and their position in
    their keyframe.
    """
    if len(rows) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    by_keyframe = rows[np.lexsort((rows, table.keyframe[rows]))]  # file order inside
    keyframes = table.keyframe[by_keyframe]
    starts = np.flatnonzero(np.diff(keyframes, prepend=-1))
    kept: list[int] = []
    position: list[int] = []
    for start, stop in zip(starts, np.append(starts[1:], len(rows)), strict=True):
        order = _heap_order(by_keyframe[start:stop], table, sort_value, capacity)
        kept += order
        position += range(len(order))
    return np.array(kept, np.int64), np.array(position, np.int64)


def _groundtruth(gt: AvaRows, rows: np.ndarray, classes: np.ndarray) -> _Boxes:
    """Selected groundtruth rows sorted by (keyframe, class, official position in the keyframe).

    The official reader treats the 8th column (person id) as a score (1.0 for a 7-column row):
    each keyframe's rows are ordered by descending value, ties in heap order. Replayed for
    every keyframe (cheap).
    """
    value = np.where(gt.short, 1.0, gt.person_id.astype(np.float64))
    kept, position = _replay(gt, rows, value, 0)
    boxes = _from_rows(gt, kept, classes, np.ones(len(kept)))
    return boxes.select(np.lexsort((position, boxes.cls, boxes.keyframe)))


def _capped_detections(
    det: AvaRows, rows: np.ndarray, classes: np.ndarray, capacity: int
) -> tuple[_Boxes, np.ndarray]:
    """Detections kept by the per-keyframe cap, in the official order; and the rows cut.

    The official order is keyframes by first appearance (among ``rows``), then descending
    score. Keyframes whose outcome depends on the heap's tie rules (a tie at the cut, or two
    kept rows of one class with the same score) are replayed row by row.
    """
    keyframe, score = det.keyframe[rows], det.score[rows]
    first_rows, first = np.unique(keyframe, return_index=True)
    appearance = np.zeros(len(det.keyframes), np.int64)  # keyframe -> rank of first appearance
    appearance[first_rows[np.argsort(first)]] = np.arange(len(first_rows))

    order = np.lexsort((-score, keyframe))  # by keyframe, descending score, then file order
    sorted_keyframe, sorted_score = keyframe[order], score[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_keyframe, sorted_keyframe)
    keep = rank < capacity if capacity > 0 else np.ones(len(order), bool)
    # a tie at the cut: the first row left out scores as much as the last row kept
    at_cut = np.flatnonzero(rank == capacity) if capacity > 0 else np.zeros(0, np.int64)
    replay = set(sorted_keyframe[at_cut[sorted_score[at_cut] == sorted_score[at_cut - 1]]])
    # two kept rows of one class with one score: their order is the heap's
    kept_rows = rows[order[keep]]
    same = np.lexsort((det.score[kept_rows], det.action_id[kept_rows], det.keyframe[kept_rows]))
    ranked = kept_rows[same]
    twin = (
        (det.keyframe[ranked][1:] == det.keyframe[ranked][:-1])
        & (det.action_id[ranked][1:] == det.action_id[ranked][:-1])
        & (det.score[ranked][1:] == det.score[ranked][:-1])
    )
    replay |= set(det.keyframe[ranked][1:][twin])

    replayed = np.isin(sorted_keyframe, np.fromiter(replay, np.int64, len(replay)))
    plain = keep & ~replayed
    positions = max(capacity, int(rank.max(initial=0))) + 1
    replay_rows = rows[order[replayed]]
    r_rows, r_position = _replay(det, replay_rows, det.score, capacity)
    cut = np.concatenate([rows[order[~keep & ~replayed]], np.setdiff1d(replay_rows, r_rows)])
    all_rows = np.concatenate([rows[order[plain]], r_rows])
    position = np.concatenate([rank[plain], r_position])
    official = np.argsort(appearance[det.keyframe[all_rows]] * positions + position, kind="stable")
    kept = all_rows[official]
    return _from_rows(det, kept, classes, det.score[kept]), cut


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box pairs [P, 4] x1, y1, x2, y2, with the official arithmetic (no +1 term)."""
    height = np.maximum(0.0, np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]))
    width = np.maximum(0.0, np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]))
    intersection = height * width
    area_a = (a[:, 3] - a[:, 1]) * (a[:, 2] - a[:, 0])
    area_b = (b[:, 3] - b[:, 1]) * (b[:, 2] - b[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):  # empty unions: NaN/inf, never a hit
        return intersection / (area_a + area_b - intersection)


def _true_positives(
    detected: _Boxes, truth: _Boxes, truth_keyframe: np.ndarray, num_classes: int, threshold: float
) -> np.ndarray:
    """Greedy VOC matching of detections (official order) to groundtruth of their keyframe/class.

    ``truth_keyframe`` maps a detection keyframe to the groundtruth keyframe index (-1: none).
    A detection hits when its best box (first on ties) has IoU >= threshold; of the hits on one
    box, only the first in order is a true positive. Returns [D] bool.
    """
    truth_group = truth.keyframe * num_classes + truth.cls  # sorted ascending
    gt_keyframe = truth_keyframe[detected.keyframe]
    group = np.where(gt_keyframe >= 0, gt_keyframe * num_classes + detected.cls, -1)
    start = np.searchsorted(truth_group, group, side="left")
    count = np.where(group >= 0, np.searchsorted(truth_group, group, side="right") - start, 0)
    first_pair = np.cumsum(count) - count
    pair_detection = np.repeat(np.arange(len(count)), count)  # [P]
    pair_offset = np.arange(int(count.sum())) - first_pair[pair_detection]  # [P]
    iou = _iou(detected.boxes[pair_detection], truth.boxes[start[pair_detection] + pair_offset])
    matched = np.flatnonzero(count > 0)
    is_true = np.zeros(len(count), bool)
    if len(matched) == 0:
        return is_true
    best_iou = np.maximum.reduceat(iou, first_pair[matched])  # [M]
    is_best = iou == np.repeat(best_iou, count[matched])
    offset = np.minimum.reduceat(np.where(is_best, pair_offset, NO_BOX), first_pair[matched])
    hits = best_iou >= threshold
    best_box = (start[matched] + offset)[hits]
    _, first_hit = np.unique(best_box, return_index=True)  # earliest detection per box
    is_true[matched[hits][first_hit]] = True
    return is_true


def frame_map(
    groundtruth: AvaRows | Mapping[KeyframeKey, Iterable[AvaBox]],
    detections: AvaRows | Sequence[Detection],
    class_ids: Iterable[int],
    iou_threshold: float = IOU_THRESHOLD,
    excluded: set[KeyframeKey] | frozenset[KeyframeKey] = frozenset(),
    max_detections_per_keyframe: int | None = MAX_DETECTIONS_PER_KEYFRAME,
) -> FrameMAP:
    """Frame-level mAP of ``detections`` against ``groundtruth`` over ``class_ids`` (module rules).

    Either side may be rows as read from the CSV (``read_annotation_rows``,
    ``read_detection_rows``) or the merged objects (``Keyframes``, ``Detection`` lists).
    ``max_detections_per_keyframe=None`` lifts the official cap of 50. Raises ValueError when
    no evaluated class has any groundtruth box.
    """
    classes = np.array(sorted(set(class_ids)), dtype=np.int64)
    if len(classes) == 0:
        raise ValueError("class_ids is empty: nothing to evaluate")
    if classes[0] < 1:
        raise ValueError(f"class ids must be >= 1, got {int(classes[0])}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if max_detections_per_keyframe is not None and max_detections_per_keyframe < 1:
        raise ValueError(
            f"max_detections_per_keyframe must be >= 1 or None, got {max_detections_per_keyframe}"
        )
    gt = groundtruth if isinstance(groundtruth, AvaRows) else AvaRows.from_keyframes(groundtruth)
    det = detections if isinstance(detections, AvaRows) else AvaRows.from_detections(detections)

    gt_excluded = np.array([k in excluded for k in gt.keyframes], bool)[gt.keyframe]
    gt_known = np.isin(gt.action_id, classes)
    truth = _groundtruth(gt, np.flatnonzero(gt_known & ~gt_excluded), classes)
    num_truth = np.bincount(truth.cls, minlength=len(classes))  # [C]

    det_excluded = np.array([k in excluded for k in det.keyframes], bool)[det.keyframe]
    det_known = np.isin(det.action_id, classes)
    capped, cut = _capped_detections(
        det, np.flatnonzero(det_known & ~det_excluded), classes, max_detections_per_keyframe or 0
    )
    x1, y1, x2, y2 = capped.boxes.T
    non_empty = (x1 < x2) & (y1 < y2)  # NaN coordinates are empty too, as in the official
    kept = capped.select(non_empty)
    # detection keyframe -> groundtruth keyframe holding evaluated boxes, or -1
    index = {gt.keyframes[k]: k for k in np.unique(truth.keyframe).tolist()}
    truth_keyframe = np.array([index.get(key, -1) for key in det.keyframes], np.int64)
    is_true = _true_positives(kept, truth, truth_keyframe, len(classes), iou_threshold)

    if not num_truth.any():
        raise ValueError(
            f"no groundtruth box for any of the {len(classes)} evaluated classes "
            f"({int((~gt_excluded).sum())} groundtruth rows left after exclusions)"
        )
    by_class = np.argsort(kept.cls, kind="stable")  # official order inside each class
    bounds = np.searchsorted(kept.cls[by_class], np.arange(len(classes) + 1))
    per_class = {}
    aps = np.full(int(classes[-1]), np.nan)  # indexed by id - 1, as the official array
    for c, class_id in enumerate(classes.tolist()):
        if num_truth[c] == 0:
            continue
        members = by_class[bounds[c] : bounds[c + 1]]
        ap = average_precision(kept.score[members], is_true[members], int(num_truth[c]))
        per_class[class_id] = aps[class_id - 1] = ap
    without_truth = truth_keyframe[kept.keyframe] < 0
    left_out = {  # count field -> line numbers of the rows it counts
        "num_detections_excluded": det.line[det_known & det_excluded],
        "num_detections_other_class": det.line[~det_known],
        "num_detections_over_capacity": det.line[cut],
        "num_detections_empty_box": det.line[capped.row[~non_empty]],
        "num_detections_short": det.line[det.short],
        "num_detections_without_groundtruth": det.line[kept.row[without_truth]],
        "num_groundtruth_other_class": gt.line[~gt_known],
        "num_groundtruth_excluded": gt.line[gt_known & gt_excluded],
        "num_groundtruth_short": gt.line[gt.short],
    }
    return FrameMAP(
        mean_ap=float(np.nanmean(aps)),
        per_class=per_class,
        classes_without_groundtruth=[
            int(c) for c, n in zip(classes, num_truth, strict=True) if n == 0
        ],
        **{key: len(lines) for key, lines in left_out.items()},
        first_line={key: int(lines.min()) for key, lines in left_out.items() if len(lines)},
    )


STRICT_KINDS = (  # detection rows that --strict refuses: left out, or read as score 1.0
    "num_detections_other_class",
    "num_detections_excluded",
    "num_detections_over_capacity",
    "num_detections_empty_box",
    "num_detections_short",
)


def evaluate_ava_files(
    groundtruth_csv: str | PathLike[str],
    detections_csv: str | PathLike[str],
    label_map_pbtxt: str | PathLike[str],
    excluded_csv: str | PathLike[str] | None = None,
    strict: bool = False,
) -> FrameMAP:
    """Evaluate an AVA detections CSV against a groundtruth CSV over the label map's classes.

    Both files are read as the official evaluator reads them (module docstring). ``strict``:
    a DataFormatError naming the detection file's first line of any kind in ``STRICT_KINDS``
    instead of a result.
    """
    names = read_label_map(label_map_pbtxt)
    excluded = read_excluded_timestamps(excluded_csv) if excluded_csv is not None else frozenset()
    result = frame_map(
        read_annotation_rows(groundtruth_csv, official=True),
        read_detection_rows(detections_csv, official=True),
        names,
        excluded=excluded,
    )
    counts = result.counts()
    refused = sorted((result.first_line[k], k) for k in STRICT_KINDS if k in result.first_line)
    if strict and refused:
        line, key = refused[0]
        what, count = counts[key]
        others = "; ".join(f"{counts[k][0]}: {counts[k][1]}" for _, k in refused[1:])
        raise data_error(
            detections_csv,
            f"strict: expected every row to be scored as written, this is one of {count} "
            f"{what}" + (f" (also {others})" if others else ""),
            line,
        )
    return result


__all__ = [
    "IOU_THRESHOLD",
    "MAX_DETECTIONS_PER_KEYFRAME",
    "STRICT_KINDS",
    "FrameMAP",
    "average_precision",
    "evaluate_ava_files",
    "frame_map",
]

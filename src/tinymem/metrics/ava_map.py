"""AVA frame-level mAP at IoU 0.5, following the official ActivityNet evaluation (PASCAL VOC AP).

Per class, the detections of all keyframes are pooled and ranked by score. Inside a keyframe the
detections are visited by descending score; each is matched to the groundtruth box of its class
with the highest IoU: a true positive if that IoU reaches the threshold and the box is still
free, else a false positive (a box already taken makes it a false positive, as in VOC). Like
the official script, at most the 50 highest-scoring detections of a keyframe are evaluated.
Nothing is dropped silently: detections of other classes, on keyframes without groundtruth (or
excluded), or over the per-keyframe cap are counted in the result.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np
import torch
from torchvision.ops import box_iou

from tinymem.data.ava import (
    Box,
    Detection,
    Keyframes,
    read_annotations,
    read_detections,
    read_excluded_timestamps,
    read_label_map,
)

IOU_THRESHOLD = 0.5  # the official AVA matching threshold
MAX_DETECTIONS_PER_KEYFRAME = 50  # the official script keeps the 50 best detections per keyframe
PERCENT = 100.0

KeyframeKey = tuple[str, int]  # (video_id, timestamp)


@dataclass
class FrameMAP:
    """Result of an AVA frame-mAP evaluation: mean and per-class AP plus what was left out."""

    mean_ap: float  # mean over the classes with groundtruth
    per_class: dict[int, float]  # classes with groundtruth only
    classes_without_groundtruth: list[int]  # evaluated classes absent from the groundtruth
    num_detections_dropped: int  # on keyframes not in the groundtruth, or excluded
    num_detections_other_class: int = 0  # detections of classes outside the evaluated ones
    num_detections_over_capacity: int = 0  # beyond the per-keyframe cap (lowest scores)
    num_groundtruth_other_class: int = 0  # groundtruth labels outside the evaluated classes

    def table(self, names: dict[int, str] | None = None) -> str:
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
        counts = {
            "detections on keyframes without groundtruth or excluded": self.num_detections_dropped,
            "detections of classes not evaluated": self.num_detections_other_class,
            f"detections beyond {MAX_DETECTIONS_PER_KEYFRAME} per keyframe": (
                self.num_detections_over_capacity
            ),
            "groundtruth labels of classes not evaluated": self.num_groundtruth_other_class,
        }
        lines += [f"skipped {what}: {count}" for what, count in counts.items() if count]
        return "\n".join(lines)


def average_precision(
    scores: Sequence[float] | np.ndarray,
    is_true_positive: Sequence[bool] | np.ndarray,
    num_groundtruth: int,
) -> float:
    """PASCAL VOC average precision of ranked detections against ``num_groundtruth`` boxes.

    Detections are ranked by descending score (ties keep their input order). Precision is made
    monotone from the right and summed over the recall change points, with recall padded by 0
    and 1 and precision by 0 and 0. Returns 0.0 when ``num_groundtruth`` is 0 (never NaN);
    callers that average over classes should leave such classes out, as ``frame_map`` does.
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
    if num_groundtruth == 0:
        return 0.0
    ranked = is_true_positive[np.argsort(-scores, kind="stable")]  # (N,)
    true_positives = np.cumsum(ranked)
    precision = true_positives / np.arange(1, len(ranked) + 1)
    recall = true_positives / num_groundtruth
    recall = np.concatenate([[0.0], recall, [1.0]])  # (N + 2,)
    precision = np.concatenate([[0.0], precision, [0.0]])  # (N + 2,)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    changes = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[changes] - recall[changes - 1]) * precision[changes]))


def _match(detected: list[Box], groundtruth: list[Box], iou_threshold: float) -> list[bool]:
    """True-positive flags of one keyframe's detections of one class, visited in the given order."""
    if not groundtruth:
        return [False] * len(detected)
    ious = box_iou(  # (num_detected, num_groundtruth)
        torch.tensor(detected, dtype=torch.float64), torch.tensor(groundtruth, dtype=torch.float64)
    )
    best_iou, best_box = ious.max(dim=1)  # first box on ties, like numpy's argmax
    taken = [False] * len(groundtruth)
    flags = []
    for iou, box in zip(best_iou.tolist(), best_box.tolist(), strict=True):
        hit = iou >= iou_threshold and not taken[box]
        taken[box] = taken[box] or hit
        flags.append(hit)
    return flags


def frame_map(
    groundtruth: Keyframes,
    detections: Sequence[Detection],
    class_ids: Iterable[int],
    iou_threshold: float = IOU_THRESHOLD,
    excluded: set[KeyframeKey] | frozenset[KeyframeKey] = frozenset(),
    max_detections_per_keyframe: int | None = MAX_DETECTIONS_PER_KEYFRAME,
) -> FrameMAP:
    """Frame-level mAP of ``detections`` against ``groundtruth`` over ``class_ids`` (AVA protocol).

    Keyframes in ``excluded`` are removed from both sides; detections on keyframes absent from
    the groundtruth are dropped and counted. ``max_detections_per_keyframe=None`` lifts the
    official cap of 50. Raises ValueError when no evaluated class has any groundtruth box.
    """
    classes = sorted(set(class_ids))
    if not classes:
        raise ValueError("class_ids is empty: nothing to evaluate")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if max_detections_per_keyframe is not None and max_detections_per_keyframe < 1:
        raise ValueError(
            f"max_detections_per_keyframe must be >= 1 or None, got {max_detections_per_keyframe}"
        )
    evaluated = set(classes)

    # class -> keyframe -> groundtruth boxes; one box per (box, label), as in the CSV rows
    truth: dict[int, dict[KeyframeKey, list[Box]]] = defaultdict(lambda: defaultdict(list))
    num_truth: Counter[int] = Counter()
    groundtruth_other_class = 0
    kept_keyframes = {key for key in groundtruth if key not in excluded}
    for key in kept_keyframes:
        for ava_box in groundtruth[key]:
            for label in ava_box.labels:
                if label in evaluated:
                    truth[label][key].append(ava_box.box)
                    num_truth[label] += 1
                else:
                    groundtruth_other_class += 1

    per_keyframe: dict[KeyframeKey, list[Detection]] = defaultdict(list)
    dropped = other_class = 0
    for detection in detections:
        key = (detection.video_id, detection.timestamp)
        if detection.action_id not in evaluated:
            other_class += 1
        elif key not in kept_keyframes:
            dropped += 1
        else:
            per_keyframe[key].append(detection)

    scores: dict[int, list[float]] = defaultdict(list)
    hits: dict[int, list[bool]] = defaultdict(list)
    over_capacity = 0
    for key, keyframe_detections in per_keyframe.items():
        ranked = sorted(keyframe_detections, key=lambda d: -d.score)  # stable on ties
        if max_detections_per_keyframe is not None:
            over_capacity += max(0, len(ranked) - max_detections_per_keyframe)
            ranked = ranked[:max_detections_per_keyframe]
        by_class: dict[int, list[Detection]] = defaultdict(list)
        for detection in ranked:
            by_class[detection.action_id].append(detection)
        for class_id, class_detections in by_class.items():
            boxes = [d.box for d in class_detections]
            hits[class_id] += _match(boxes, truth[class_id].get(key, []), iou_threshold)
            scores[class_id] += [d.score for d in class_detections]

    with_truth = [c for c in classes if num_truth[c] > 0]
    if not with_truth:
        raise ValueError(
            f"no groundtruth box for any of the {len(classes)} evaluated classes "
            f"({len(kept_keyframes)} keyframes left after exclusions)"
        )
    per_class = {c: average_precision(scores[c], hits[c], num_truth[c]) for c in with_truth}
    return FrameMAP(
        mean_ap=math.fsum(per_class.values()) / len(per_class),
        per_class=per_class,
        classes_without_groundtruth=[c for c in classes if num_truth[c] == 0],
        num_detections_dropped=dropped,
        num_detections_other_class=other_class,
        num_detections_over_capacity=over_capacity,
        num_groundtruth_other_class=groundtruth_other_class,
    )


def evaluate_ava_files(
    groundtruth_csv: str | PathLike[str],
    detections_csv: str | PathLike[str],
    label_map_pbtxt: str | PathLike[str],
    excluded_csv: str | PathLike[str] | None = None,
) -> FrameMAP:
    """Evaluate an AVA detections CSV against a groundtruth CSV over the label map's classes."""
    names = read_label_map(label_map_pbtxt)
    groundtruth, rows_other_class = read_annotations(groundtruth_csv, allowed_classes=set(names))
    excluded = read_excluded_timestamps(excluded_csv) if excluded_csv is not None else frozenset()
    result = frame_map(groundtruth, read_detections(detections_csv), names, excluded=excluded)
    result.num_groundtruth_other_class += rows_other_class
    return result

"""AVA frame-mAP@0.5: every rule of the official evaluator against hand-computed answers."""

import heapq
import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from helpers.ava import KEY_A, KEY_B, LEFT, RIGHT, VIDEO, det
from tinymem.data.ava.formats import (
    AvaBox,
    AvaRows,
    read_annotation_rows,
    read_detection_rows,
    write_detections,
    write_label_map,
)
from tinymem.errors import DataFormatError
from tinymem.metrics.ava import STRICT_KINDS, average_precision, evaluate_ava_files, frame_map
from tinymem.metrics.ava_map import frame_map as frame_map_old_name

FAR = (0.9, 0.9, 1.0, 1.0)  # overlaps neither LEFT nor RIGHT


@pytest.mark.parametrize(
    ("scores", "hits", "num_truth", "expected"),
    [
        ([0.9, 0.8], [True, True], 2, 1.0),  # perfect
        ([0.9, 0.8, 0.7], [True, True, True], 4, 0.75),  # one box missed
        ([0.9, 0.8], [False, True], 1, 0.5),  # FP ranked above the TP
        ([0.8, 0.9], [True, False], 1, 0.5),  # ranking is by score, not input order
        ([0.9, 0.8, 0.7], [True, False, True], 2, 0.5 + 0.5 * 2 / 3),  # monotone precision
        ([0.9, 0.8], [True, False], 1, 1.0),  # FP below every TP costs nothing
        ([], [], 3, 0.0),  # no detections
        ([0.5], [False], 0, 0.0),  # no groundtruth: 0.0, not NaN
    ],
)
def test_average_precision_hand_computed(scores, hits, num_truth, expected):
    assert average_precision(scores, hits, num_truth) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("scores", "hits", "num_truth", "message"),
    [
        ([0.9, math.nan], [True, False], 1, "finite"),
        ([0.9, 0.8], [True, True], 1, "cannot match"),
        ([0.9], [True, False], 2, "equal length"),
    ],
)
def test_average_precision_rejects_bad_input(scores, hits, num_truth, message):
    with pytest.raises(ValueError, match=message):
        average_precision(scores, hits, num_truth)


def test_perfect_detections_give_one():
    truth = {KEY_A: [AvaBox(LEFT, [1, 2]), AvaBox(RIGHT, [1])], KEY_B: [AvaBox(RIGHT, [2])]}
    detections = [
        det(KEY_A, LEFT, 0.9, 1),
        det(KEY_A, LEFT, 0.8, 2),
        det(KEY_A, RIGHT, 0.7, 1),
        det(KEY_B, RIGHT, 0.6, 2),
    ]
    result = frame_map(truth, detections, [1, 2])
    assert result.mean_ap == pytest.approx(1.0)
    assert result.per_class == pytest.approx({1: 1.0, 2: 1.0})
    assert result.classes_without_groundtruth == []
    assert result.num_detections_without_groundtruth == 0
    assert frame_map_old_name is frame_map  # the former module name still works


def test_missed_box_lowers_ap_by_voc_amount():
    # 4 groundtruth boxes over two keyframes, 3 found perfectly: recall stops at 3/4
    truth = {
        KEY_A: [AvaBox(LEFT, [1]), AvaBox(RIGHT, [1])],
        KEY_B: [AvaBox(LEFT, [1]), AvaBox(RIGHT, [1])],
    }
    detections = [det(KEY_A, LEFT, 0.9), det(KEY_A, RIGHT, 0.8), det(KEY_B, LEFT, 0.7)]
    assert frame_map(truth, detections, [1]).mean_ap == pytest.approx(0.75)


def test_false_positive_ranked_above_true_positive():
    truth = {KEY_A: [AvaBox(LEFT, [1])]}
    detections = [det(KEY_A, FAR, 0.9), det(KEY_A, LEFT, 0.8)]
    assert frame_map(truth, detections, [1]).mean_ap == pytest.approx(0.5)


def test_detections_pooled_across_keyframes_by_score():
    # the FP on keyframe B outranks the TP on keyframe A
    truth = {KEY_A: [AvaBox(LEFT, [1])], KEY_B: [AvaBox(LEFT, [1])]}
    detections = [det(KEY_A, LEFT, 0.5), det(KEY_B, FAR, 0.9), det(KEY_B, LEFT, 0.3)]
    # ranked: FP, TP, TP -> precision 0, 1/2, 2/3 at recall 0, 1/2, 1
    expected = 0.5 * (2 / 3) + 0.5 * (2 / 3)
    assert frame_map(truth, detections, [1]).mean_ap == pytest.approx(expected)


def test_duplicate_detection_is_false_positive():
    truth = {KEY_A: [AvaBox(LEFT, [1]), AvaBox(RIGHT, [1])]}
    detections = [det(KEY_A, LEFT, 0.9), det(KEY_A, LEFT, 0.8), det(KEY_A, RIGHT, 0.7)]
    # TP, FP, TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    assert frame_map(truth, detections, [1]).mean_ap == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_greedy_matching_follows_descending_score_not_file_order():
    # the lower-scored detection fits the box better, but the higher-scored one claims it first
    truth = {KEY_A: [AvaBox(LEFT, [1])]}
    detections = [det(KEY_A, LEFT, 0.6), det(KEY_A, (0.0, 0.0, 0.36, 1.0), 0.9)]
    # 0.9 takes the box (IoU 0.9), the exact 0.6 is a duplicate: TP then FP -> AP 1
    result = frame_map(truth, detections, [1])
    assert result.mean_ap == pytest.approx(1.0)
    swapped = [det(KEY_A, LEFT, 0.9), det(KEY_A, FAR, 0.95)]
    assert frame_map(truth, swapped, [1]).mean_ap == pytest.approx(0.5)


def test_best_box_taken_means_false_positive_even_if_another_box_overlaps():
    # two overlapping groundtruth boxes; the second detection overlaps both (IoU 0.9 and 0.74)
    # but its best box is taken: VOC counts it as FP instead of matching the other box
    first, second = (0.0, 0.0, 0.4, 1.0), (0.1, 0.0, 0.5, 1.0)
    truth = {KEY_A: [AvaBox(first, [1]), AvaBox(second, [1])]}
    detections = [det(KEY_A, first, 0.9), det(KEY_A, (0.04, 0.0, 0.44, 1.0), 0.8)]
    assert frame_map(truth, detections, [1]).mean_ap == pytest.approx(0.5)


@pytest.mark.parametrize(("x2", "expected"), [(0.499, 0.0), (0.5, 1.0), (0.501, 1.0)])
def test_iou_exactly_half_is_a_hit(x2, expected):
    # groundtruth covers the whole frame, the detection its left part: IoU = x2 (0.5 exactly)
    truth = {KEY_A: [AvaBox((0.0, 0.0, 1.0, 1.0), [1])]}
    detections = [det(KEY_A, (0.0, 0.0, x2, 1.0), 0.9)]
    assert frame_map(truth, detections, [1]).mean_ap == pytest.approx(expected)


def test_iou_has_no_plus_one_pixel_term():
    # IoU 0.0625 / 0.25 = 0.25: a miss; with the +1 convention it would be (1.25*1.0625)/1.5625
    truth = {KEY_A: [AvaBox((0.25, 0.25, 0.5, 0.5), [1])]}
    detections = [det(KEY_A, (0.25, 0.25, 0.5, 0.3125), 0.9)]
    assert frame_map(truth, detections, [1]).mean_ap == 0.0


def test_detection_of_other_class_does_not_match():
    truth = {KEY_A: [AvaBox(LEFT, [1]), AvaBox(RIGHT, [2])]}
    detections = [det(KEY_A, RIGHT, 0.9, 1), det(KEY_A, LEFT, 0.8, 1), det(KEY_A, RIGHT, 0.7, 2)]
    result = frame_map(truth, detections, [1, 2])
    assert result.per_class == pytest.approx({1: 0.5, 2: 1.0})
    assert result.mean_ap == pytest.approx(0.75)


def test_class_without_groundtruth_is_left_out_of_the_mean():
    truth = {KEY_A: [AvaBox(LEFT, [1])]}
    detections = [det(KEY_A, LEFT, 0.9, 1), det(KEY_A, RIGHT, 0.8, 3)]
    result = frame_map(truth, detections, [1, 3, 5])
    assert result.mean_ap == pytest.approx(1.0)
    assert list(result.per_class) == [1]
    assert result.classes_without_groundtruth == [3, 5]


def test_class_with_groundtruth_but_no_detections_scores_zero():
    truth = {KEY_A: [AvaBox(LEFT, [1]), AvaBox(RIGHT, [2])]}
    result = frame_map(truth, [det(KEY_A, LEFT, 0.9, 1)], [1, 2])
    assert result.per_class == {1: 1.0, 2: 0.0}
    assert result.mean_ap == pytest.approx(0.5)


def test_excluded_keyframes_are_removed_from_both_sides():
    truth = {KEY_A: [AvaBox(LEFT, [1])], KEY_B: [AvaBox(LEFT, [1]), AvaBox(RIGHT, [1])]}
    detections = [det(KEY_A, LEFT, 0.9), det(KEY_B, FAR, 0.95)]
    # with B: FP first, one TP of three boxes; without B: its boxes are not missed either
    assert frame_map(truth, detections, [1]).mean_ap == pytest.approx(1 / 6)
    result = frame_map(truth, detections, [1], excluded={KEY_B})
    assert result.mean_ap == pytest.approx(1.0)
    assert result.num_detections_excluded == 1
    assert result.num_groundtruth_excluded == 2


def test_detections_on_keyframes_without_groundtruth_are_false_positives():
    truth = {KEY_A: [AvaBox(LEFT, [1, 80])]}
    detections = [
        det(KEY_A, LEFT, 0.9),
        det((VIDEO, 999), LEFT, 0.99),  # keyframe without groundtruth: FP
        det(("other", 902), LEFT, 0.95),  # video without groundtruth: FP
        det(KEY_A, LEFT, 0.99, 80),  # class not evaluated: ignored
    ]
    result = frame_map(truth, detections, [1])
    assert result.mean_ap == pytest.approx(1 / 3)  # FP, FP, TP
    assert result.num_detections_without_groundtruth == 2
    assert result.num_detections_other_class == 1
    assert result.num_groundtruth_other_class == 1
    table = result.table({1: "bend/bow (at the waist)"})
    assert "bend/bow (at the waist)" in table and "33.33" in table
    assert "detections on keyframes without groundtruth (false positives): 2" in table


def test_only_the_50_best_rows_of_a_keyframe_count():
    truth = {KEY_A: [AvaBox(LEFT, [1])]}
    far = [det(KEY_A, FAR, 0.9 - i / 1000) for i in range(50)]
    cut = frame_map(truth, [*far, det(KEY_A, LEFT, 0.1)], [1])  # the TP is the 51st best
    assert cut.mean_ap == 0.0
    assert cut.num_detections_over_capacity == 1
    kept = frame_map(truth, [*far[:49], det(KEY_A, LEFT, 0.1)], [1])  # the TP is the 50th
    assert kept.mean_ap == pytest.approx(1 / 50)
    uncapped = frame_map(
        truth, [*far, det(KEY_A, LEFT, 0.1)], [1], max_detections_per_keyframe=None
    )
    assert uncapped.mean_ap == pytest.approx(1 / 51)
    # rows of classes that are not evaluated do not use up the 50
    others = [det(KEY_A, FAR, 0.95, 7) for _ in range(60)]
    assert frame_map(truth, [*others, det(KEY_A, LEFT, 0.1)], [1]).mean_ap == 1.0


def test_cap_ties_follow_the_official_heap():
    truth = {KEY_A: [AvaBox(LEFT, [1])]}
    same = [det(KEY_A, FAR, 0.5) for _ in range(50)]
    # a full heap takes a row only with a strictly higher score: the 51st tie is dropped
    assert frame_map(truth, [*same, det(KEY_A, LEFT, 0.5)], [1]).mean_ap == 0.0
    assert frame_map(truth, [det(KEY_A, LEFT, 0.5), *same], [1]).mean_ap > 0.0
    # a higher row evicts the smallest (score, action_id, y1, x1, y2, x2) among the tied rows
    tied = [det(KEY_A, FAR, 0.5, 2) for _ in range(49)]
    larger = [det(KEY_A, LEFT, 0.5, 3), *tied, det(KEY_A, FAR, 0.9, 2)]
    truth3 = {KEY_A: [AvaBox(LEFT, [3])]}
    assert frame_map(truth3, larger, [2, 3]).per_class[3] == 1.0  # a (0.5, 2, ...) row goes
    smallest = [det(KEY_A, LEFT, 0.5, 1), *tied, det(KEY_A, FAR, 0.9, 2)]
    assert frame_map(truth, smallest, [1, 2]).per_class[1] == 0.0  # (0.5, 1, ...) goes


def test_empty_detection_boxes_are_dropped_not_false_positives():
    truth = {KEY_A: [AvaBox(LEFT, [1])]}
    detections = [det(KEY_A, (0.5, 0.1, 0.5, 0.9), 0.9), det(KEY_A, LEFT, 0.8)]
    result = frame_map(truth, detections, [1])
    assert result.mean_ap == 1.0
    assert result.num_detections_empty_box == 1


def test_equal_overlap_goes_to_the_first_box_in_descending_person_id():
    # D2 overlaps A and B equally (IoU 0.6 each); A is taken by D1
    a, b = (0.0, 0.0, 0.5, 1.0), (0.25, 0.0, 0.75, 1.0)
    detections = AvaRows.from_detections(
        [det(KEY_A, a, 0.9), det(KEY_A, (0.125, 0.0, 0.625, 1.0), 0.8)]
    )

    def truth(person_a, person_b):
        return AvaRows.build([KEY_A, KEY_A], [a, b], [1, 1], person_id=[person_a, person_b])

    assert frame_map(truth(1, 2), detections, [1]).mean_ap == 1.0  # order B, A: D2 takes B
    assert frame_map(truth(2, 1), detections, [1]).mean_ap == 0.5  # order A, B: D2 hits taken A


def test_duplicate_groundtruth_rows_count_twice(tmp_path):
    label_map = tmp_path / "labels.pbtxt"
    write_label_map(label_map, {1: "bend/bow (at the waist)"})
    gt = tmp_path / "gt.csv"
    gt.write_text("vid,0902,0.000,0.000,0.400,1.000,1,0\n" * 2)
    detections = tmp_path / "det.csv"
    write_detections(detections, [det(KEY_A, LEFT, 0.9)])
    assert evaluate_ava_files(gt, detections, label_map).mean_ap == pytest.approx(0.5)


def test_no_groundtruth_at_all_is_an_error():
    with pytest.raises(ValueError, match="no groundtruth"):
        frame_map({KEY_A: [AvaBox(LEFT, [2])]}, [det(KEY_A, LEFT, 0.9)], [1])


def reference_map(gt_rows, det_rows, class_ids, excluded, cap=50):
    """The official rules, one row at a time (heap cap, greedy matching, VOC AP).

    A row's last field may be None (a 7-column row: value 1.0). Boxes may be empty or reversed:
    empty detection boxes are dropped after the cap; IoU uses the official arithmetic, with
    NaN for an empty union (never a hit, and it wins the argmax as numpy's does).
    """
    classes = set(class_ids)
    truth_heaps, det_heaps = {}, {}
    for video, ts, x1, y1, x2, y2, action, person in gt_rows:
        if action in classes:
            value = 1.0 if person is None else float(person)
            heapq.heappush(truth_heaps.setdefault((video, ts), []), (value, action, y1, x1, y2, x2))
    for video, ts, x1, y1, x2, y2, action, score in det_rows:
        if action not in classes:
            continue
        score = 1.0 if score is None else score
        heap = det_heaps.setdefault((video, ts), [])
        if len(heap) < cap:
            heapq.heappush(heap, (score, action, y1, x1, y2, x2))
        elif score > heap[0][0]:
            heapq.heapreplace(heap, (score, action, y1, x1, y2, x2))
    truth = {k: sorted(h, key=lambda e: -e[0]) for k, h in truth_heaps.items() if k not in excluded}
    num_truth = Counter(entry[1] for entries in truth.values() for entry in entries)
    scores, hits = defaultdict(list), defaultdict(list)
    for key, heap in det_heaps.items():
        if key in excluded:
            continue
        taken = set()
        for score, action, y1, x1, y2, x2 in sorted(heap, key=lambda e: -e[0]):
            if not (y1 < y2 and x1 < x2):
                continue
            boxes = [(i, e[2:]) for i, e in enumerate(truth.get(key, [])) if e[1] == action]
            best, best_iou = None, -1.0
            for i, (ty1, tx1, ty2, tx2) in boxes:
                h = max(0.0, min(y2, ty2) - max(y1, ty1))
                w = max(0.0, min(x2, tx2) - max(x1, tx1))
                inter = h * w
                union = (y2 - y1) * (x2 - x1) + (ty2 - ty1) * (tx2 - tx1) - inter
                iou = inter / union if union else math.nan
                if math.isnan(iou):  # numpy's argmax stops at the first NaN
                    best, best_iou = i, iou
                    break
                if iou > best_iou:
                    best, best_iou = i, iou
            hit = best is not None and best_iou >= 0.5 and best not in taken
            if hit:
                taken.add(best)
            scores[action].append(score)
            hits[action].append(hit)
    per_class = {}
    for c in sorted(classes):
        if num_truth[c] == 0:
            continue
        ranked = [hits[c][i] for i in np.argsort(np.array(scores[c], dtype=float))[::-1]]
        precision, recall, found = [], [], 0
        for n, hit in enumerate(ranked, 1):
            found += hit
            precision.append(found / n)
            recall.append(found / num_truth[c])
        precision, recall = [0.0, *precision, 0.0], [0.0, *recall, 1.0]
        for i in range(len(precision) - 2, -1, -1):
            precision[i] = max(precision[i], precision[i + 1])
        per_class[c] = sum(
            (recall[i] - recall[i - 1]) * precision[i]
            for i in range(1, len(recall))
            if recall[i] != recall[i - 1]
        )
    return per_class


def random_rows(rng):
    """Rows on a coarse grid with few score levels: IoU ties, IoU 0.5, score ties, >50 rows."""
    grid = int(rng.choice([2, 4]))
    levels = int(rng.choice([3, 10, 1000]))
    keys = list({(f"v{rng.integers(3)}", 902 + int(rng.integers(5))) for _ in range(10)})

    def box():
        x = np.sort(rng.integers(0, grid + 1, 2)) / grid
        y = np.sort(rng.integers(0, grid + 1, 2)) / grid
        return float(x[0]), float(y[0]), float(x[1]), float(y[1])

    gt = [
        (*key, *box(), int(rng.choice([1, 2, 3, 9])), int(rng.integers(3)))
        for key in keys[:6]
        for _ in range(rng.integers(1, 6))
    ]
    gt += gt[: len(gt) // 5]  # duplicated rows
    detections = [
        (*key, *box(), int(rng.choice([1, 2, 3, 9])), float(rng.integers(levels) / levels))
        for key in [*keys, ("unseen", 902)]
        for _ in range(rng.integers(0, 80))
    ]
    rng.shuffle(detections)
    excluded = {key for key in keys if rng.random() < 0.2}
    return gt, detections, excluded


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_code_matches_the_row_by_row_reference(seed):
    gt, detections, excluded = random_rows(np.random.default_rng(seed))
    expected = reference_map(gt, detections, [1, 2, 3], excluded)
    if not expected:
        pytest.skip("no groundtruth left")
    gt_rows = AvaRows.build(
        [r[:2] for r in gt], [r[2:6] for r in gt], [r[6] for r in gt], person_id=[r[7] for r in gt]
    )
    det_rows = AvaRows.build(
        [r[:2] for r in detections],
        [r[2:6] for r in detections],
        [r[6] for r in detections],
        score=[r[7] for r in detections],
    )
    result = frame_map(gt_rows, det_rows, [1, 2, 3], excluded=excluded)
    assert result.per_class == pytest.approx(expected, abs=1e-12)
    assert result.mean_ap == pytest.approx(sum(expected.values()) / len(expected), abs=1e-12)


def test_round_trip_through_files(ava_files):
    result = evaluate_ava_files(
        ava_files / "gt.csv",
        ava_files / "det.csv",
        ava_files / "labels.pbtxt",
        ava_files / "excluded.csv",
    )
    # class 1: TP 0.9, FP 0.5, FP 0.125 with 2 boxes -> 1/2; class 3: perfect; class 4: none
    assert result.per_class == pytest.approx({1: 0.5, 3: 1.0})
    assert result.mean_ap == pytest.approx(0.75)
    assert result.classes_without_groundtruth == [4]
    assert result.num_detections_excluded == 1
    assert result.num_groundtruth_other_class == 1
    assert result.num_groundtruth_excluded == 1


def test_fast_and_row_by_row_parsers_agree(ava_files):
    plain = read_detection_rows(ava_files / "det.csv")
    # quotes, spaces and CRLF send the file to the csv-module parser
    text = (ava_files / "det.csv").read_text().replace("vid,", '"vid", ').replace("\n", "\r\n")
    (ava_files / "odd.csv").write_text(text, newline="")
    odd = read_detection_rows(ava_files / "odd.csv")
    assert odd.keyframes == plain.keyframes == [KEY_A, KEY_B, (VIDEO, 904)]
    for field in ("keyframe", "boxes", "action_id", "score", "person_id"):
        np.testing.assert_array_equal(getattr(odd, field), getattr(plain, field))
    truth = read_annotation_rows(ava_files / "gt.csv")
    assert truth.person_id.tolist() == [0, 0, 1, 0, 1] and len(truth.keyframes) == 3


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ("vid,09x2,0.1,0.2,0.3,0.4,1,0.5", "integer timestamp"),
        ("vid,0902,0.3,0.2,0.1,0.4,1,0.5", "x1 <= x2"),
        ("vid,0902,0.1,0.2,0.3,0.4,1", "expected 8 columns"),
        ("vid,0902,0.1,0.2,0.3,0.4,1,0.5,7", "expected 8 columns"),
        ("vid,0902,0.1,0.2,0.3,1.4,1,0.5", "y2 in [0, 1]"),
        ("vid,0902,0.1,0.2,0.3,0.4,1,nan", "finite float score"),
    ],
)
def test_bad_detection_rows_name_file_and_line(tmp_path, bad_row, expected):
    path = tmp_path / "det.csv"
    path.write_text("vid,0902,0.1,0.2,0.3,0.4,1,0.5\n\n" + bad_row + "\n")
    with pytest.raises(DataFormatError) as info:
        read_detection_rows(path)
    assert str(info.value).startswith(f"{path}:3: ") and expected in str(info.value)


def write_rows(path, rows):
    """Write CSV rows as the official tools would read them; a None last field is left out."""
    lines = []
    for video, ts, *numbers, last in rows:
        fields = [video, f"{ts:04d}", *(repr(float(v)) for v in numbers[:4]), str(numbers[4])]
        if last is not None:
            fields.append(repr(last))
        lines.append(",".join(fields))
    path.write_text("".join(line + "\n" for line in lines))
    return path


def evaluate_rows(tmp_path, gt_rows, det_rows, class_ids=(1,), excluded=(), strict=False):
    """evaluate_ava_files on files written from the rows."""
    write_label_map(tmp_path / "labels.pbtxt", {c: f"class {c}" for c in class_ids})
    excluded_csv = tmp_path / "excluded.csv"
    excluded_csv.write_text("".join(f"{v},{t:04d}\n" for v, t in excluded))
    return evaluate_ava_files(
        write_rows(tmp_path / "gt.csv", gt_rows),
        write_rows(tmp_path / "det.csv", det_rows),
        tmp_path / "labels.pbtxt",
        excluded_csv,
        strict=strict,
    )


TRUTH_LEFT = [(*KEY_A, *LEFT, 1, 0)]

EMPTY = (0.5, 0.1, 0.5, 0.9)  # x1 == x2

REVERSED = (0.6, 0.1, 0.2, 0.9)  # x1 > x2

FAR_ROWS = [(*KEY_A, *FAR, 1, 0.9 - i / 1000) for i in range(49)]


@pytest.mark.parametrize("box", [EMPTY, REVERSED], ids=["empty", "reversed"])
def test_empty_box_in_the_top_50_takes_a_place_then_is_dropped(tmp_path, box):
    rows = [*FAR_ROWS, (*KEY_A, *box, 1, 0.95), (*KEY_A, *LEFT, 1, 0.1)]
    result = evaluate_rows(tmp_path, TRUTH_LEFT, rows)
    # 51 rows: the empty one is among the 50 best, so the true positive (lowest) is cut
    assert result.mean_ap == 0.0
    assert (result.num_detections_empty_box, result.num_detections_over_capacity) == (1, 1)
    assert result.first_line == {"num_detections_empty_box": 50, "num_detections_over_capacity": 51}
    table = result.table()
    assert "detections with an empty box, x1 >= x2 or y1 >= y2 (ignored): 1, first at line 50" in (
        table
    )
    assert reference_map(TRUTH_LEFT, rows, [1], set()) == {1: result.mean_ap}
    with pytest.raises(DataFormatError, match=r"det\.csv:50: strict: .* 1 detections with an"):
        evaluate_rows(tmp_path, TRUTH_LEFT, rows, strict=True)


def test_empty_box_below_the_top_50_is_cut_by_the_cap_not_dropped_as_empty(tmp_path):
    rows = [*FAR_ROWS, (*KEY_A, *EMPTY, 1, 0.05), (*KEY_A, *LEFT, 1, 0.1)]
    result = evaluate_rows(tmp_path, TRUTH_LEFT, rows)
    assert result.mean_ap == pytest.approx(1 / 50)  # the true positive is the 50th
    assert (result.num_detections_empty_box, result.num_detections_over_capacity) == (0, 1)
    assert result.first_line == {"num_detections_over_capacity": 50}
    assert reference_map(TRUTH_LEFT, rows, [1], set()) == pytest.approx({1: 1 / 50})
    with pytest.raises(DataFormatError, match=r"det\.csv:50: strict: .* beyond 50 per keyframe"):
        evaluate_rows(tmp_path, TRUTH_LEFT, rows, strict=True)


def test_seven_column_rows_score_one(tmp_path):
    # a detection without a score is scored 1.0: it outranks the 0.99 false positive
    rows = [(*KEY_A, *FAR, 1, 0.99), (*KEY_A, *LEFT, 1, None)]
    result = evaluate_rows(tmp_path, TRUTH_LEFT, rows)
    assert result.mean_ap == 1.0 and result.num_detections_short == 1
    assert result.first_line == {"num_detections_short": 2}
    with pytest.raises(DataFormatError, match=r"det\.csv:2: strict: .* 7 columns, no score"):
        evaluate_rows(tmp_path, TRUTH_LEFT, rows, strict=True)
    # a groundtruth row without a person id sorts as 1.0: above person 0, below person 2
    a, b = (0.0, 0.0, 0.5, 1.0), (0.25, 0.0, 0.75, 1.0)
    detections = [(*KEY_A, *a, 1, 0.9), (*KEY_A, 0.125, 0.0, 0.625, 1.0, 1, 0.8)]
    for person_a, expected in ((0, 1.0), (2, 0.5)):  # order (B, A): D2 takes B; (A, B): A taken
        truth = [(*KEY_A, *a, 1, person_a), (*KEY_A, *b, 1, None)]
        result = evaluate_rows(tmp_path, truth, detections)
        assert result.mean_ap == expected and result.num_groundtruth_short == 1
        assert reference_map(truth, detections, [1], set()) == {1: expected}
        assert evaluate_rows(tmp_path, truth, detections, strict=True).mean_ap == expected


def test_unknown_ids_and_excluded_keyframes_are_dropped_counted_and_strict_fails(tmp_path):
    truth = [*TRUTH_LEFT, (*KEY_A, *LEFT, 7, 0), (*KEY_B, *LEFT, 1, 0)]
    rows = [(*KEY_A, *LEFT, 1, 0.9), (*KEY_B, *LEFT, 1, 0.8), (*KEY_A, *LEFT, 7, 0.95)]
    result = evaluate_rows(tmp_path, truth, rows, excluded=[KEY_B])
    assert result.mean_ap == 1.0
    assert result.first_line == {
        "num_detections_excluded": 2,
        "num_detections_other_class": 3,
        "num_groundtruth_other_class": 2,
        "num_groundtruth_excluded": 3,
    }
    with pytest.raises(DataFormatError, match=r"det\.csv:2: strict: .* excluded keyframes .*also"):
        evaluate_rows(tmp_path, truth, rows, excluded=[KEY_B], strict=True)
    with pytest.raises(DataFormatError, match=r"det\.csv:3: strict: .* classes not evaluated"):
        evaluate_rows(tmp_path, truth, rows, strict=True)
    # groundtruth rows of other classes alone do not fail --strict (the official file has 80)
    assert evaluate_rows(tmp_path, truth, rows[:1], excluded=[KEY_B], strict=True).mean_ap == 1


def test_rows_the_official_reader_rejects_are_still_refused(tmp_path):
    for bad in ("vid,0902,0.1,0.2,0.3", "vid,0902,0.1,0.2,0.3,0.4,1,0.5,7", "vid,0902,a,0,1,1,1"):
        (tmp_path / "det.csv").write_text("vid,0902,0.1,0.2,0.3,0.4,1,0.5\n" + bad + "\n")
        with pytest.raises(DataFormatError, match=r"det\.csv:2: expected"):
            read_detection_rows(tmp_path / "det.csv", official=True)


def random_official_rows(rng):
    """random_rows plus every case the official reader accepts and the evaluator drops."""
    gt, detections, excluded = random_rows(rng)

    def odd(row, last_none):
        row = list(row)
        roll = rng.random()
        if roll < 0.1:  # empty or reversed box
            row[2], row[4] = row[4], row[2]
        elif roll < 0.15:  # outside [0, 1]
            row[2], row[5] = row[2] - 0.25, row[5] + 0.25
        if rng.random() < last_none:
            row[7] = None  # a 7-column row
        return tuple(row)

    return [odd(r, 0.1) for r in gt], [odd(r, 0.1) for r in detections], excluded


@pytest.mark.parametrize("seed", range(30))
def test_files_with_every_accepted_case_match_the_row_by_row_reference(tmp_path, seed):
    gt, detections, excluded = random_official_rows(np.random.default_rng(100 + seed))
    expected = reference_map(gt, detections, [1, 2, 3], excluded)
    assert expected, "every seed here leaves some groundtruth"
    result = evaluate_rows(tmp_path, gt, detections, (1, 2, 3), sorted(excluded))
    assert result.per_class == pytest.approx(expected, abs=1e-6)
    assert result.mean_ap == pytest.approx(sum(expected.values()) / len(expected), abs=1e-6)
    assert result.num_detections_short == sum(r[7] is None for r in detections)
    assert result.num_groundtruth_short == sum(r[7] is None for r in gt)
    if any(result.first_line.get(k) for k in STRICT_KINDS):
        with pytest.raises(DataFormatError, match=r"det\.csv:\d+: strict: "):
            evaluate_rows(tmp_path, gt, detections, (1, 2, 3), sorted(excluded), strict=True)

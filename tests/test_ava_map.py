"""AVA frame-mAP@0.5 against hand-computed PASCAL VOC answers."""

import math

import pytest

from tinymem.data.ava import AvaBox, Detection, read_detections, write_detections
from tinymem.metrics.ava_map import average_precision, evaluate_ava_files, frame_map

VIDEO = "vid"
KEY_A = (VIDEO, 902)
KEY_B = (VIDEO, 903)
LEFT = (0.0, 0.0, 0.4, 1.0)
RIGHT = (0.6, 0.0, 1.0, 1.0)
FAR = (0.9, 0.9, 1.0, 1.0)  # overlaps neither LEFT nor RIGHT


def det(key, box, score, action_id=1):
    """A detection at ``key``."""
    return Detection(video_id=key[0], timestamp=key[1], box=box, action_id=action_id, score=score)


# ---------------------------------------------------------------------------------------------
# average_precision


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


# ---------------------------------------------------------------------------------------------
# frame_map


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
    assert result.num_detections_dropped == 0


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


def test_best_box_taken_means_false_positive_even_if_another_box_overlaps():
    # two overlapping groundtruth boxes; the second detection overlaps both (IoU 0.9 and 0.74)
    # but its best box is taken: VOC counts it as FP instead of matching the other box
    first, second = (0.0, 0.0, 0.4, 1.0), (0.1, 0.0, 0.5, 1.0)
    truth = {KEY_A: [AvaBox(first, [1]), AvaBox(second, [1])]}
    detections = [det(KEY_A, first, 0.9), det(KEY_A, (0.04, 0.0, 0.44, 1.0), 0.8)]
    assert frame_map(truth, detections, [1]).mean_ap == pytest.approx(0.5)


@pytest.mark.parametrize(("x2", "expected"), [(0.499, 0.0), (0.5, 1.0), (0.501, 1.0)])
def test_iou_threshold_boundary(x2, expected):
    # groundtruth covers the whole frame, the detection its left part: IoU = x2
    truth = {KEY_A: [AvaBox((0.0, 0.0, 1.0, 1.0), [1])]}
    detections = [det(KEY_A, (0.0, 0.0, x2, 1.0), 0.9)]
    assert frame_map(truth, detections, [1]).mean_ap == pytest.approx(expected)


def test_detection_of_other_class_does_not_match():
    truth = {KEY_A: [AvaBox(LEFT, [1]), AvaBox(RIGHT, [2])]}
    detections = [det(KEY_A, RIGHT, 0.9, 1), det(KEY_A, LEFT, 0.8, 1), det(KEY_A, RIGHT, 0.7, 2)]
    result = frame_map(truth, detections, [1, 2])
    assert result.per_class == pytest.approx({1: 0.5, 2: 1.0})
    assert result.mean_ap == pytest.approx(0.75)


def test_class_without_groundtruth_is_excluded_from_mean():
    truth = {KEY_A: [AvaBox(LEFT, [1])]}
    detections = [det(KEY_A, LEFT, 0.9, 1), det(KEY_A, RIGHT, 0.8, 3)]
    result = frame_map(truth, detections, [1, 3, 5])
    assert result.mean_ap == pytest.approx(1.0)
    assert list(result.per_class) == [1]
    assert result.classes_without_groundtruth == [3, 5]


def test_excluded_keyframes_drop_groundtruth_and_detections():
    truth = {KEY_A: [AvaBox(LEFT, [1])], KEY_B: [AvaBox(LEFT, [1])]}
    detections = [det(KEY_A, LEFT, 0.9), det(KEY_B, FAR, 0.95)]
    assert frame_map(truth, detections, [1]).mean_ap == pytest.approx(0.25)
    result = frame_map(truth, detections, [1], excluded={KEY_B})
    assert result.mean_ap == pytest.approx(1.0)
    assert result.num_detections_dropped == 1


def test_dropped_and_skipped_detections_are_counted():
    truth = {KEY_A: [AvaBox(LEFT, [1, 80])]}
    detections = [
        det(KEY_A, LEFT, 0.9),
        det((VIDEO, 999), LEFT, 0.99),  # keyframe without groundtruth
        det(("other", 902), LEFT, 0.99),  # video without groundtruth
        det(KEY_A, LEFT, 0.99, 80),  # class not evaluated
    ]
    result = frame_map(truth, detections, [1])
    assert result.mean_ap == pytest.approx(1.0)
    assert result.num_detections_dropped == 2
    assert result.num_detections_other_class == 1
    assert result.num_groundtruth_other_class == 1
    table = result.table({1: "bend/bow (at the waist)"})
    assert "bend/bow (at the waist)" in table
    assert "100.00" in table
    assert "without groundtruth or excluded: 2" in table


def test_detections_beyond_per_keyframe_cap_are_cut_and_counted():
    truth = {KEY_A: [AvaBox(LEFT, [1])]}
    detections = [det(KEY_A, FAR, 0.9), det(KEY_A, FAR, 0.8), det(KEY_A, LEFT, 0.7)]
    capped = frame_map(truth, detections, [1], max_detections_per_keyframe=2)
    assert capped.mean_ap == pytest.approx(0.0)
    assert capped.num_detections_over_capacity == 1
    assert frame_map(truth, detections, [1]).mean_ap == pytest.approx(1 / 3)


def test_no_groundtruth_at_all_is_an_error():
    with pytest.raises(ValueError, match="no groundtruth"):
        frame_map({KEY_A: [AvaBox(LEFT, [2])]}, [det(KEY_A, LEFT, 0.9)], [1])


# ---------------------------------------------------------------------------------------------
# files


def test_round_trip_through_files(tmp_path):
    label_map = tmp_path / "labels.pbtxt"
    label_map.write_text(
        'item {\n  name: "bend/bow (at the waist)"\n  id: 1\n}\n'
        'item {\n  name: "crouch/kneel"\n  id: 3\n}\n'
        'item {\n  name: "dance"\n  id: 4\n}\n'
    )
    groundtruth_csv = tmp_path / "gt.csv"
    groundtruth_csv.write_text(
        "vid,0902,0.000,0.000,0.400,1.000,1,0\n"
        "vid,0902,0.000,0.000,0.400,1.000,80,0\n"  # class outside the label map
        "vid,0902,0.600,0.000,1.000,1.000,3,1\n"
        "vid,0903,0.000,0.000,0.400,1.000,1,0\n"
        "vid,0904,0.600,0.000,1.000,1.000,3,1\n"  # excluded keyframe
    )
    excluded_csv = tmp_path / "excluded.csv"
    excluded_csv.write_text("vid,0904\n")
    detections = [
        det(KEY_A, LEFT, 0.9, 1),
        det(KEY_A, RIGHT, 0.125, 1),
        det(KEY_A, RIGHT, 0.75, 3),
        det(KEY_B, RIGHT, 0.5, 1),
        det((VIDEO, 904), RIGHT, 0.5, 3),
    ]
    detections_csv = tmp_path / "detections.csv"
    write_detections(detections_csv, detections)
    assert read_detections(detections_csv) == detections

    result = evaluate_ava_files(groundtruth_csv, detections_csv, label_map, excluded_csv)
    # class 1: TP 0.9, FP 0.5, FP 0.125 with 2 boxes -> 1/2; class 3: perfect; class 4: none
    assert result.per_class == pytest.approx({1: 0.5, 3: 1.0})
    assert result.mean_ap == pytest.approx(0.75)
    assert result.classes_without_groundtruth == [4]
    assert result.num_detections_dropped == 1
    assert result.num_groundtruth_other_class == 1

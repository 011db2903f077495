"""The readers on the real public annotation files in ``../shared/real_data`` (never skipped).

Every checkout has them beside the repository (``<repo>/../shared/real_data``; each folder's
README gives source, commit and whether a file is complete or a sample). A missing folder
fails these tests: they are the only contact the readers have with files written by others.
"""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import pytest

from helpers.common import REAL_DATA
from tinymem.data.ava.formats import (
    AVA_EVALUATED_IDS,
    read_annotation_rows,
    read_annotations,
    read_excluded_timestamps,
    read_label_map,
    read_proposals,
)
from tinymem.data.breakfast.formats import (
    check_bundle_split,
    find_groundtruth_files,
    read_groundtruth,
    read_mapping,
)
from tinymem.data.epic_kitchens.formats import read_epic_annotations, read_video_info
from tinymem.errors import DataFormatError

EPIC = REAL_DATA / "epic_kitchens"
AVA = REAL_DATA / "ava"
BREAKFAST = REAL_DATA / "breakfast"
# segments (runs of one label) and frames of each of the 7 real groundTruth files
GROUNDTRUTH_SEGMENTS = {
    "P03_cam01_P03_cereals": (6, 832),
    "P13_stereo01_P13_tea": (4, 441),
    "P18_webcam01_P18_coffee": (3, 344),
    "P18_webcam02_P18_tea": (4, 464),
    "P36_cam01_P36_tea": (4, 463),
    "P40_cam02_P40_coffee": (4, 417),
    "P54_webcam02_P54_milk": (4, 743),
}


def real(path: Path) -> Path:
    """``path`` under ../shared/real_data, failing (not skipping) when it is not there."""
    assert path.exists(), f"the real data file {path} is missing: every checkout has ../shared"
    return path


# ---------------------------------------------------------------------------------------------
# EPIC-KITCHENS-100


def test_epic_validation_keeps_every_segment_with_or_without_narration_timestamp() -> None:
    segments = read_epic_annotations(real(EPIC / "EPIC_100_validation.csv"))
    assert len(segments) == 9668
    assert len({s.video_id for s in segments}) == 138
    missing = {s.narration_id for s in segments if s.narration_sec is None}
    with open(real(EPIC / "EPIC_100_validation_missing_timestamp_narrations.csv")) as f:
        listed = {row["narration_id"] for row in csv.DictReader(f)}
    assert len(missing) == 70 and missing == listed
    first = next(s for s in segments if s.narration_sec is None)
    assert first.line == 1103 and first.narration_id == "P02_12_293"


def test_epic_frame_numbers_are_60_fps_whatever_the_video_rate() -> None:
    segments = read_epic_annotations(real(EPIC / "EPIC_100_validation.csv"))
    info = read_video_info(real(EPIC / "EPIC_100_video_info.csv"))
    assert len(info) == 700
    rates = Counter(round(v.fps, 2) for v in info.values())
    assert rates == {59.94: 423, 50.0: 268, 29.97: 4, 47.95: 4, 90.0: 1}
    odd = {s.video_id for s in segments if round(info[s.video_id].fps) in (30, 48, 90)}
    assert odd == {"P09_07", "P09_08", "P18_02", "P17_02", "P18_09"}
    for segment in segments:  # frames / seconds is 60 (to the timestamps' 0.01 s)
        if segment.start_sec >= 10:
            assert segment.start_frame / segment.start_sec == pytest.approx(60.0, rel=2e-3)


# ---------------------------------------------------------------------------------------------
# AVA


def test_ava_label_maps_in_both_dialects() -> None:
    full = read_label_map(real(AVA / "ava_action_list_v2.2.pbtxt"))  # label { label_id } dialect
    assert sorted(full) == list(range(1, 81))
    evaluated = read_label_map(real(AVA / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"))
    assert tuple(sorted(evaluated)) == AVA_EVALUATED_IDS and len(evaluated) == 60
    assert read_label_map(real(AVA / "ava_action_list_v2.1_for_activitynet_2018.pbtxt.txt")) == (
        evaluated
    )
    assert all(full[i] == name for i, name in evaluated.items())


def test_ava_excluded_and_included_timestamps() -> None:
    counts = {
        split: len(
            read_excluded_timestamps(real(AVA / f"ava_{split}_excluded_timestamps_v2.2.csv"))
        )
        for split in ("train", "val", "test")
    }
    assert counts == {"train": 161, "val": 37, "test": 66}
    included = real(AVA / "ava_included_timestamps_v2.2.txt").read_text().split()
    assert [int(t) for t in included] == list(range(902, 1799))


def test_ava_groundtruth_and_person_box_heads() -> None:
    keyframes, skipped = read_annotations(real(AVA / "ava_val_v2.1_head1500.csv"))
    assert (len(keyframes), sum(len(b) for b in keyframes.values()), skipped) == (527, 677, 0)
    rows = read_annotation_rows(AVA / "ava_val_v2.1_head1500.csv")
    assert len(rows) == 1500 and len(rows.keyframes) == 527
    proposals, below = read_proposals(real(AVA / "ava_val_predicted_boxes_head.csv"))
    assert (len(proposals), sum(len(b) for b in proposals.values()), below) == (211, 313, 0)


def test_ava_v22_head_row_with_a_malformed_person_id_is_named() -> None:
    # line 16 ends with person id "3_" in this copy (the official evaluator fails on it too)
    with pytest.raises(DataFormatError, match=r"ava_val_v2\.2_head\.csv:16: .*person_id.*'3_'"):
        read_annotations(real(AVA / "ava_val_v2.2_head.csv"))


# ---------------------------------------------------------------------------------------------
# Breakfast


def test_breakfast_mapping_and_groundtruth_segments_per_file() -> None:
    names = read_mapping(real(BREAKFAST / "mapping.txt"))
    assert len(names) == 48 and names[0] == "SIL" and names[-1] == "stir_tea"
    found = find_groundtruth_files(real(BREAKFAST / "groundTruth"))
    assert (found.with_suffix, found.without_suffix, found.ignored) == (7, 0, ())
    classes = {name: i for i, name in enumerate(names)}
    counts = {}
    for video, path in found.files.items():
        segments = read_groundtruth(path, classes)
        counts[video] = (len(segments), segments[-1].end + 1)
        assert segments[0].label == 0  # every file starts with SIL
    assert counts == GROUNDTRUTH_SEGMENTS


def test_breakfast_groundtruth_without_suffix_is_found_and_said(tmp_path: Path) -> None:
    folder = tmp_path / "groundTruth"
    folder.mkdir()
    for index, path in enumerate(sorted(real(BREAKFAST / "groundTruth").iterdir())):
        name = path.name if index < 2 else path.stem  # 2 with .txt, 5 without (mixed copy)
        shutil.copy(path, folder / name)
    (folder / "README").write_text("not a video\n")
    found = find_groundtruth_files(folder)
    assert sorted(found.files) == sorted(GROUNDTRUTH_SEGMENTS)
    assert (found.with_suffix, found.without_suffix) == (2, 5)
    assert found.describe() == (
        "7 groundTruth files (2 named <video>.txt, 5 named <video> without a suffix); "
        "1 other entries ignored, first README"
    )
    shutil.copy(folder / "P03_cam01_P03_cereals.txt", folder / "P03_cam01_P03_cereals")
    with pytest.raises(DataFormatError, match="expected one groundTruth file per video"):
        find_groundtruth_files(folder)


@pytest.mark.parametrize("split", [1, 2, 3, 4])
def test_breakfast_split_bundles_partition_the_1712_videos(split: int) -> None:
    train = check_bundle_split(real(BREAKFAST / f"splits/train.split{split}.bundle"), split, False)
    test = check_bundle_split(real(BREAKFAST / f"splits/test.split{split}.bundle"), split, True)
    train_names, test_names = {v.name for v in train}, {v.name for v in test}
    assert len(train_names) == len(train) and len(test_names) == len(test)  # no repeats
    assert not train_names & test_names and len(train_names | test_names) == 1712
    sizes = {1: (1460, 252), 2: (1261, 451), 3: (1279, 433), 4: (1136, 576)}
    assert (len(train), len(test)) == sizes[split]

"""Breakfast files: video names, the mapping, both annotation layouts, subject splits, bundles."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinymem.data.breakfast.formats import (
    ACTIVITIES,
    Segment,
    check_bundle_split,
    frames_to_segments,
    is_test_subject,
    parse_video_name,
    read_bundle,
    read_groundtruth,
    read_mapping,
    read_segmentation,
    split_videos,
)
from tinymem.data.breakfast.synthetic import GROUNDTRUTH_DIR, SEGMENTATION_DIR
from tinymem.errors import DataFormatError

CLASSES = {"SIL": 0, "take_bowl": 1, "pour_cereals": 2, "pour_milk": 3}


def test_video_names() -> None:
    video = parse_video_name("P03_webcam01_P03_scrambledegg")
    assert (video.subject, video.camera, video.activity) == (3, "webcam01", "scrambledegg")
    assert video.activity_index == ACTIVITIES.index("scrambledegg") == 8
    assert video.video_path("{subject}/{camera}/{subject}_{activity}.avi", "x") == (
        "P03/webcam01/P03_scrambledegg.avi"
    )
    stereo = parse_video_name("P03_stereo01_P03_tea")
    assert stereo.video_path("y", "{subject}/stereo/{subject}_{activity}_ch1.avi") == (
        "P03/stereo/P03_tea_ch1.avi"
    )
    with pytest.raises(DataFormatError, match="expected an activity"):
        parse_video_name("P03_cam01_P03_waffles")
    with pytest.raises(DataFormatError, match="expected a video name"):
        parse_video_name("P03_cereals")
    with pytest.raises(DataFormatError, match="expected a subject P03-P54"):
        parse_video_name("P02_cam01_P02_tea")


def test_mapping(tmp_path: Path) -> None:
    path = tmp_path / "mapping.txt"
    path.write_text("0 SIL\n1 pour_cereals\n2 pour_milk\n")
    assert read_mapping(path) == ["SIL", "pour_cereals", "pour_milk"]
    path.write_text("0 SIL\n2 pour_milk\n")
    with pytest.raises(DataFormatError, match=r"mapping\.txt:2: expected id 1"):
        read_mapping(path)


def test_per_frame_groundtruth_becomes_segments(tmp_path: Path) -> None:
    path = tmp_path / "P03_cam01_P03_cereals.txt"
    path.write_text("SIL\nSIL\ntake_bowl\ntake_bowl\ntake_bowl\npour_cereals\nSIL\n")
    assert read_groundtruth(path, CLASSES) == [
        Segment(0, 1, 0, line=1),
        Segment(2, 4, 1, line=3),
        Segment(5, 5, 2, line=6),
        Segment(6, 6, 0, line=7),
    ]
    assert frames_to_segments([4, 4, 4]) == [Segment(0, 2, 4)]
    path.write_text("SIL\ntake_bowl\nstir_milk\n")
    with pytest.raises(DataFormatError, match=r"cereals\.txt:3: expected a sub-action listed"):
        read_groundtruth(path, CLASSES)


def test_raw_segmentation_is_one_based_inclusive_and_contiguous(tmp_path: Path) -> None:
    path = tmp_path / "P03_cam01_P03_cereals.txt"
    path.write_text("1-30 SIL  \n31-150 take_bowl  \n151-428 pour_cereals\n429-430 SIL\n")
    segments = read_segmentation(path, CLASSES)
    assert [(s.start, s.end, s.label, s.line) for s in segments] == [
        (0, 29, 0, 1),
        (30, 149, 1, 2),
        (150, 427, 2, 3),
        (428, 429, 0, 4),
    ]
    for text, message in [
        ("1-30 SIL\n32-40 take_bowl\n", r":2: expected contiguous segments, .* frame 31, got 32"),
        ("2-30 SIL\n", r":1: expected contiguous segments, .* frame 1, got 2"),
        ("1-30 SIL\n31-20 take_bowl\n", r":2: expected start <= end"),
        ("1-30 SIL\n31-40\n", r":2: expected a line 'start-end label'"),
        ("1-30 SIL\n31-40 stir_milk\n", r":2: expected a sub-action listed in mapping.txt"),
    ]:
        path.write_text(text)
        with pytest.raises(DataFormatError, match=r"cereals\.txt" + message):
            read_segmentation(path, CLASSES)


def test_both_layouts_give_the_same_segments(breakfast_world: Path) -> None:
    classes = {name: i for i, name in enumerate(read_mapping(breakfast_world / "mapping.txt"))}
    for path in sorted((breakfast_world / GROUNDTRUTH_DIR).glob("*.txt")):
        raw = read_segmentation(breakfast_world / SEGMENTATION_DIR / path.name, classes)
        per_frame = read_groundtruth(path, classes)
        assert [(s.start, s.end, s.label) for s in raw] == [
            (s.start, s.end, s.label) for s in per_frame
        ]
        assert len(per_frame) >= 5 and per_frame[0].label == per_frame[-1].label == 0  # SIL


def test_subject_splits() -> None:
    edges = {1: (3, 15), 2: (16, 28), 3: (29, 41), 4: (42, 54)}
    for split, (first, last) in edges.items():
        assert is_test_subject(first, split) and is_test_subject(last, split)
        assert not is_test_subject(first - 1, split) and not is_test_subject(last + 1, split)
        tests = [s for s in range(3, 55) if is_test_subject(s, split)]
        assert tests == list(range(first, last + 1))
    videos = [parse_video_name(f"P{s:02d}_cam01_P{s:02d}_tea") for s in (3, 15, 16, 54)]
    train, test = split_videos(videos, 1)
    assert [v.subject for v in test] == [3, 15] and [v.subject for v in train] == [16, 54]
    with pytest.raises(ValueError, match="data.split"):
        is_test_subject(3, 5)


def test_bundles_are_checked_against_the_subject_split(breakfast_world: Path, tmp_path: Path):
    splits = breakfast_world / "splits"
    for split in (1, 2, 3, 4):
        test = check_bundle_split(splits / f"test.split{split}.bundle", split, test=True)
        train = check_bundle_split(splits / f"train.split{split}.bundle", split, test=False)
        assert {v.subject for v in test} == {(3, 16, 29, 42)[split - 1]}
        assert len(train) == 3 * len(test)
    bad = tmp_path / "train.split1.bundle"
    bad.write_text("P16_cam01_P16_tea.txt\nP15_cam01_P15_tea.txt\n")
    with pytest.raises(DataFormatError, match=r"train\.split1\.bundle:2: expected train subjects"):
        check_bundle_split(bad, 1, test=False)
    assert [v.name for v in read_bundle(bad)] == ["P16_cam01_P16_tea", "P15_cam01_P15_tea"]

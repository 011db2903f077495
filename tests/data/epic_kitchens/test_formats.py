"""Epic-Kitchens-100 files: timestamps, the annotation CSV and video info, bad rows named."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.data import EPIC_HEADER, epic_csv
from tinymem.data.epic_kitchens.formats import (
    format_timestamp,
    parse_timestamp,
    read_epic_annotations,
    read_video_info,
)
from tinymem.errors import DataFormatError

ROWS = [
    "0,P01_01_0,P01,P01_01,00:00:01.089,00:00:00.14,00:00:03.37,8,202,open door,open,3,door,3,"
    "['door'],[3]",
    '1,P01_01_1,P01,P01_01,00:00:02.629,00:00:04.37,00:00:06.17,262,370,"take cup, plate",take,0,'
    "cup,8,\"['cup', 'plate']\",\"[8, 2]\"",
]


def test_timestamps_parse_and_format() -> None:
    assert parse_timestamp("00:00:03.37") == pytest.approx(3.37)
    assert parse_timestamp("01:02:03.089") == pytest.approx(3723.089)
    assert format_timestamp(3723.089, 3) == "01:02:03.089"
    assert format_timestamp(0.14) == "00:00:00.14"
    for bad in ("00:00:3.37", "00:61:00.00", "0:00", "aa:00:00.00"):
        with pytest.raises(ValueError, match="HH:mm:ss"):
            parse_timestamp(bad)


def test_annotations_parse_the_release_format(tmp_path: Path) -> None:
    first, second = read_epic_annotations(epic_csv(tmp_path, ROWS))
    assert (first.narration_id, first.video_id, first.participant_id) == (
        "P01_01_0",
        "P01_01",
        "P01",
    )
    assert (first.start_sec, first.stop_sec) == (pytest.approx(0.14), pytest.approx(3.37))
    assert (first.start_frame, first.stop_frame, first.verb_class, first.noun_class) == (
        8,
        202,
        3,
        3,
    )
    assert second.narration == "take cup, plate"
    assert second.all_nouns == ("cup", "plate") and second.all_noun_classes == (8, 2)
    assert second.line == 3


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (ROWS[1].replace("00:00:04.37", "00:00:4.37"), r":3: start_timestamp: expected"),
        (ROWS[1].replace(",262,", ",2x2,"), r":3: expected an integer start_frame"),
        (ROWS[1].replace(",262,370,", ",400,370,"), r":3: expected 0 <= start_frame <= stop"),
        (ROWS[1].replace(",take,0,", ",take,97,"), r":3: expected verb_class in \[0, 96\]"),
        (ROWS[1].replace("cup,8,", "cup,300,"), r":3: expected noun_class in \[0, 299\]"),
        (ROWS[1].replace('"[8, 2]"', '"[8, x]"'), r":3: expected all_noun_classes as a list"),
        (ROWS[1].replace('"[8, 2]"', "[8]"), r":3: expected all_nouns and all_noun_classes"),
        (ROWS[0].rsplit(",", 1)[0], r":3: expected 16 columns as in the header, got"),
        (ROWS[0].replace("0,P01_01_0", "1,P01_01_0"), r":3: expected unique narration_id"),
    ],
    ids=["timestamp", "integer", "order", "verb", "noun", "list", "lengths", "columns", "dup"],
)
def test_bad_annotation_rows_name_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = epic_csv(tmp_path, [ROWS[0], row])
    with pytest.raises(DataFormatError, match=r"EPIC_100_train\.csv" + message):
        read_epic_annotations(path)


def test_missing_header_column_names_line_1(tmp_path: Path) -> None:
    path = epic_csv(tmp_path, ROWS, header=EPIC_HEADER.replace("noun_class,", "noun_klass,"))
    with pytest.raises(DataFormatError, match=r"EPIC_100_train\.csv:1: .*missing \['noun_class'\]"):
        read_epic_annotations(path)


def test_video_info(tmp_path: Path) -> None:
    path = tmp_path / "EPIC_100_video_info.csv"
    path.write_text(
        "video_id,duration,fps,resolution\n"
        "P01_01,1652.152817,59.9400599400599,1920x1080\n"
        "P01_101,10.0,50.0,1920x1080\n"
    )
    info = read_video_info(path)
    assert info["P01_01"].fps == pytest.approx(59.94006) and info["P01_101"].width == 1920
    path.write_text("video_id,duration,fps,resolution\nP01_01,10.0,50.0,1920-1080\n")
    with pytest.raises(DataFormatError, match=r"video_info\.csv:2: expected resolution"):
        read_video_info(path)

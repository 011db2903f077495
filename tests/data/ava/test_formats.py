import pytest

from tinymem.data.ava.formats import (
    AvaBox,
    Detection,
    read_annotations,
    read_detections,
    read_excluded_timestamps,
    read_label_map,
    read_proposals,
    write_annotations,
    write_detections,
    write_label_map,
    write_proposals,
)
from tinymem.errors import DataFormatError

GT_ROWS = """\
-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1
-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,9,1
-5KQ66BBWC4,0902,0.226,0.032,0.366,0.497,12,0
-5KQ66BBWC4,0903,0.100,0.200,0.300,0.400,17,1
vid2,1798,0.000,0.000,1.000,1.000,2,5
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_annotations_merges_rows_of_one_box(tmp_path):
    keyframes, skipped = read_annotations(write(tmp_path, "gt.csv", GT_ROWS))
    assert skipped == 0
    assert list(keyframes) == [("-5KQ66BBWC4", 902), ("-5KQ66BBWC4", 903), ("vid2", 1798)]
    first, second = keyframes[("-5KQ66BBWC4", 902)]
    assert first == AvaBox(box=(0.077, 0.151, 0.283, 0.811), labels=[80, 9], person_id=1)
    assert second.labels == [12] and second.person_id == 0


def test_allowed_classes_skip_count(tmp_path):
    keyframes, skipped = read_annotations(write(tmp_path, "gt.csv", GT_ROWS), {9, 17, 2})
    assert skipped == 2  # actions 80 and 12
    assert [b.labels for b in keyframes[("-5KQ66BBWC4", 902)]] == [[9]]
    assert sum(len(v) for v in keyframes.values()) == 3


def test_annotations_round_trip(tmp_path):
    keyframes, _ = read_annotations(write(tmp_path, "gt.csv", GT_ROWS))
    write_annotations(tmp_path / "out.csv", keyframes)
    assert (tmp_path / "out.csv").read_text() == GT_ROWS
    assert read_annotations(tmp_path / "out.csv")[0] == keyframes


def test_proposals_round_trip_and_min_score(tmp_path):
    path = write(
        tmp_path, "props.csv", "v1,0902,0.1,0.2,0.3,0.4,,0.95\nv1,0902,0.5,0.5,0.6,0.9,,0.3\n"
    )
    keyframes, skipped = read_proposals(path, min_score=0.5)
    assert skipped == 1
    assert keyframes == {("v1", 902): [AvaBox((0.1, 0.2, 0.3, 0.4), [], score=0.95)]}
    write_proposals(tmp_path / "out.csv", keyframes)
    assert (tmp_path / "out.csv").read_text() == "v1,0902,0.100,0.200,0.300,0.400,,0.950000\n"
    assert read_proposals(tmp_path / "out.csv")[0] == keyframes


def test_detections_round_trip(tmp_path):
    detections = [
        Detection("v1", 902, (0.1, 0.2, 0.3, 0.4), 12, 0.123456),
        Detection("v2", 1000, (0.0, 0.0, 1.0, 1.0), 80, 1.0),
    ]
    write_detections(tmp_path / "det.csv", detections)
    text = (tmp_path / "det.csv").read_text()
    assert text.splitlines()[0] == "v1,0902,0.100,0.200,0.300,0.400,12,0.123456"
    assert read_detections(tmp_path / "det.csv") == detections


def test_excluded_timestamps(tmp_path):
    path = write(tmp_path, "excl.csv", "v1,0902\nv2,1798\n")
    assert read_excluded_timestamps(path) == {("v1", 902), ("v2", 1798)}
    assert read_excluded_timestamps(write(tmp_path, "empty.csv", "")) == set()


ITEM_DIALECT = """\
item {
  name: "bend/bow (at the waist)"
  id: 1
}
item {
  name: "carry/hold (an object)"
  id: 17
}
"""
LABEL_DIALECT = """\
# a comment
label {
  name: "bend/bow (at the waist)"
  label_id: 1
  label_type: PERSON_MOVEMENT
}
label { name: "say \\"hi\\"" label_id: 80 label_type: PERSON_INTERACTION }
"""


def test_label_map_dialects_and_round_trip(tmp_path):
    assert read_label_map(write(tmp_path, "a.pbtxt", ITEM_DIALECT)) == {
        1: "bend/bow (at the waist)",
        17: "carry/hold (an object)",
    }
    names = read_label_map(write(tmp_path, "b.pbtxt", LABEL_DIALECT))
    assert names == {1: "bend/bow (at the waist)", 80: 'say "hi"'}
    write_label_map(tmp_path / "c.pbtxt", names)
    assert read_label_map(tmp_path / "c.pbtxt") == names
    assert (
        'item {\n  name: "bend/bow (at the waist)"\n  id: 1\n}'
        in (tmp_path / "c.pbtxt").read_text()
    )


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("", None, "at least one"),
        ('item {\n  name: "a"\n}\n', 1, "'id' or 'label_id'"),
        ("item {\n  id: 3\n}\n", 1, "quoted name"),
        ('item { name: "a" id: 1 }\nitem { name: "b" id: x }\n', 2, "integer id"),
        ('item { name: "a" id: 1 }\nitem { name: "b" id: 1 }\n', 2, "unique ids"),
        ('item { name: "a" id: 1 }\nthing {\n', 2, "block"),
        ('item { name: "a" id: 1\n', 1, "end of file"),
        ('item { name "a" id: 1 }\n', 1, "':'"),
        ('item { name: "a\n', 1, "terminated"),
    ],
)
def test_label_map_errors(tmp_path, text, line, expected):
    path = write(tmp_path, "bad_map.pbtxt", text)
    with pytest.raises(DataFormatError) as info:
        read_label_map(path)
    message = str(info.value)
    assert "bad_map.pbtxt" in message and expected in message
    if line is not None:
        assert f"bad_map.pbtxt:{line}:" in message


GOOD = "v1,0902,0.1,0.2,0.3,0.4,12,0\n"


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ("v1,0902,0.1,0.2,0.3,0.4,12", "expected 8 columns"),
        ("v1,0902,0.1,0.2,0.3,0.4,12,0,7", "expected 8 columns"),
        ("v1,09x2,0.1,0.2,0.3,0.4,12,0", "integer timestamp"),
        ("v1,0902,0.1,0.2,0.3,0.4,walk,0", "integer action_id"),
        ("v1,0902,0.1,0.2,0.3,0.4,12,p1", "integer person_id"),
        ("v1,0902,0.1,abc,0.3,0.4,12,0", "float y1"),
        ("v1,0902,0.1,0.2,1.3,0.4,12,0", "x2 in [0, 1]"),
        ("v1,0902,-0.1,0.2,0.3,0.4,12,0", "x1 in [0, 1]"),
        ("v1,0902,0.1,0.2,0.3,nan,12,0", "y2 in [0, 1]"),
        ("v1,0902,0.5,0.2,0.3,0.4,12,0", "x1 <= x2"),
        ("v1,0902,0.1,0.5,0.3,0.4,12,0", "y1 <= y2"),
        (",0902,0.1,0.2,0.3,0.4,12,0", "video_id"),
    ],
)
def test_annotation_errors_name_file_and_line(tmp_path, bad_row, expected):
    path = write(tmp_path, "ava_val.csv", GOOD + GOOD + bad_row + "\n")
    with pytest.raises(DataFormatError) as info:
        read_annotations(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: ") and expected in message


@pytest.mark.parametrize(
    ("reader", "bad_row", "expected"),
    [
        (read_proposals, "v1,0902,0.1,0.2,0.3,0.4,0.9", "expected 8 columns"),
        (read_proposals, "v1,0902,0.1,0.2,0.3,0.4,12,0.9", "empty 7th column"),
        (read_proposals, "v1,0902,0.1,0.2,0.3,0.4,,high", "float score"),
        (read_proposals, "v1,0902,0.4,0.2,0.3,0.4,,0.9", "x1 <= x2"),
        (read_detections, "v1,0902,0.1,0.2,0.3,0.4,12,inf", "float score"),
        (read_detections, "v1,0902,0.1,0.2,0.3,0.4,x,0.5", "integer action_id"),
        (read_excluded_timestamps, "v1,0902,1", "expected 2 columns"),
        (read_excluded_timestamps, "v1,t", "integer timestamp"),
    ],
)
def test_other_readers_errors_name_file_and_line(tmp_path, reader, bad_row, expected):
    good = {
        read_proposals: "v1,0902,0.1,0.2,0.3,0.4,,0.9\n",
        read_detections: "v1,0902,0.1,0.2,0.3,0.4,12,0.9\n",
        read_excluded_timestamps: "v1,0902\n",
    }[reader]
    path = write(tmp_path, "input.csv", good + bad_row + "\n")
    with pytest.raises(DataFormatError) as info:
        reader(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: ") and expected in message


def test_data_format_error_is_value_error():
    assert issubclass(DataFormatError, ValueError)

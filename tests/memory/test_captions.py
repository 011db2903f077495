import json
import logging

import pytest

from tinymem.errors import DataFormatError
from tinymem.memory.captions import CaptionStore, read_caption_file


def write_captions(directory, video_id, entries):
    lines = [json.dumps({"frame": f, "caption": c}) for f, c in entries]
    (directory / f"{video_id}.jsonl").write_text("\n".join(lines) + "\n")


def test_exact_and_nearest_frame(tmp_path):
    write_captions(tmp_path, "v1", [(30, "b"), (0, "a"), (60, "c")])
    store = CaptionStore(tmp_path)
    assert store.captions("v1", [0, 30, 60]) == ["a", "b", "c"]
    # 14 -> 0, 15 ties between 0 and 30 (earlier wins), 16 -> 30, past the end -> last
    assert store.captions("v1", [14, 15, 16, 44, 46, 1000]) == ["a", "a", "b", "b", "c", "c"]
    assert store.missing_videos == set()


def test_missing_file_warns_once_and_falls_back_to_empty(tmp_path, caplog):
    store = CaptionStore(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tinymem.memory.captions"):
        assert store.captions("nope", [0, 5, 9]) == ["", "", ""]
        assert store.captions("nope", [3]) == [""]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "nope" in warnings[0].getMessage()
    assert store.missing_videos == {"nope"}


def test_missing_file_is_only_a_debug_line_when_the_caller_counts_it(tmp_path, caplog):
    store = CaptionStore(tmp_path, warn_missing=False)
    with caplog.at_level(logging.DEBUG, logger="tinymem.memory.captions"):
        assert store.captions("nope", [0]) == [""]
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert store.missing_videos == {"nope"}  # still counted


def test_files_are_read_lazily_once(tmp_path):
    store = CaptionStore(tmp_path)
    write_captions(tmp_path, "v1", [(0, "first")])
    assert store.captions("v1", [0]) == ["first"]
    write_captions(tmp_path, "v1", [(0, "changed")])
    assert store.captions("v1", [0]) == ["first"]


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("{not json", "invalid JSON"),
        ('{"frame": 3}', "expected a JSON object"),
        ('{"caption": "x"}', "expected a JSON object"),
        ('{"frame": "3", "caption": "x"}', "got frame '3'"),
        ('{"frame": 2.5, "caption": "x"}', "got frame 2.5"),
        ('{"frame": -1, "caption": "x"}', "got frame -1"),
        ('{"frame": true, "caption": "x"}', "got frame True"),
        ('{"frame": 3, "caption": 7}', "got caption 7"),
        ('[3, "x"]', "expected a JSON object"),
        ('{"frame": 0, "caption": "again"}', "frame 0 again"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, expected):
    good = json.dumps({"frame": 0, "caption": "ok"})
    (tmp_path / "v1.jsonl").write_text(f"{good}\n\n{bad_line}\n")
    with pytest.raises(DataFormatError) as info:
        CaptionStore(tmp_path).captions("v1", [0])
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'v1.jsonl'}:3: ") and expected in message


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "v1.jsonl").write_text("")
    with pytest.raises(DataFormatError, match="v1.jsonl"):
        CaptionStore(tmp_path).captions("v1", [0])


def test_exact_and_nearest_lookups_are_counted(tmp_path):
    write_captions(tmp_path, "v1", [(0, "a"), (30, "b")])
    store = CaptionStore(tmp_path)
    store.captions("v1", [0, 1, 29, 30])
    assert (store.exact_frames, store.nearest_frames) == (2, 2)


def test_video_id_field_is_optional_but_must_match(tmp_path):
    lines = [
        json.dumps({"video_id": "v1", "frame": 0, "caption": ""}),
        json.dumps({"video_id": "v1", "frame": 4, "caption": "a person"}),
    ]
    (tmp_path / "v1.jsonl").write_text("\n".join(lines) + "\n")
    assert read_caption_file(tmp_path / "v1.jsonl") == {0: "", 4: "a person"}
    assert CaptionStore(tmp_path).captions("v1", [0, 1, 3]) == ["", "", "a person"]
    (tmp_path / "v2.jsonl").write_text(json.dumps({"video_id": "v1", "frame": 0, "caption": ""}))
    with pytest.raises(DataFormatError, match=r"v2.jsonl:1: expected video_id 'v2', got 'v1'"):
        CaptionStore(tmp_path).captions("v2", [0])


def test_preload_fails_early_on_a_malformed_file(tmp_path):
    write_captions(tmp_path, "good", [(0, "a")])
    (tmp_path / "bad.jsonl").write_text('{"frame": 0}\n')
    store = CaptionStore(tmp_path)
    with pytest.raises(DataFormatError, match="bad.jsonl:1"):
        store.preload(["good", "missing", "bad"])
    assert store.missing_videos == {"missing"}

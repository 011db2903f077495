"""The bad-input sweep: every malformed input of every format gets a named error or a counted skip.

Each case writes one file (or config) and reads it the way tinymem does; the expected outcome
is an error whose message names the file (and line) or key, or a count of what was skipped, or,
for inputs that are fine once decoded (a UTF-8 BOM), the same result as the clean file. The
README's "Bad input" table lists these cases.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tinymem.config import compose_config
from tinymem.data.ava.formats import (
    read_annotations,
    read_detection_rows,
    read_label_map,
    read_proposals,
)
from tinymem.data.breakfast.formats import read_groundtruth, read_mapping
from tinymem.data.epic_kitchens.formats import ANNOTATION_COLUMNS, read_epic_annotations
from tinymem.data.video import probe_video, write_video
from tinymem.lit.restore import read_checkpoint
from tinymem.memory.captions import read_caption_file
from tinymem.metrics.ava import evaluate_ava_files
from tinymem.models.checkpoints import read_state_dict
from tinymem.pipeline import train, validate_config

BOM = b"\xef\xbb\xbf"
AVA_ROW = b"syn_a,0902,0.100,0.200,0.500,0.900,3,0\n"
PROPOSAL_ROW = b"syn_a,0902,0.100,0.200,0.500,0.900,,0.950000\n"
DETECTION_ROW = b"syn_a,0902,0.100,0.200,0.500,0.900,3,0.950000\n"
LABEL_MAP = b'item {\n  name: "stand"\n  id: 3\n}\n'
CAPTIONS = b'{"frame": 0, "caption": "a person stands"}\n'
EK_HEADER = ",".join(ANNOTATION_COLUMNS).encode() + b"\n"
EK_ROW = (
    b"P01_01_0,P01,P01_01,00:00:01.000,00:00:01.00,00:00:02.00,60,120,open tap,open,3,tap,"
    b'12,"[\'tap\']","[12]"\n'
)
MAPPING = b"0 SIL\n1 pour_milk\n"


@dataclass
class Case:
    """One malformed (or merely unusual) input and what reading it must give."""

    name: str  # format: case, as in the README table
    file: str  # file name to write
    content: bytes
    read: Callable[[Path], Any]
    error: str | None = None  # regex the error message must match (after the file name)
    line: int | None = None  # the line the error must name
    check: Callable[[Any], bool] | None = None  # the result of a read that must succeed


def _keys(result: Any) -> set:
    return set(result[0])


def _video(path: Path) -> Any:
    return probe_video(path)


def _bomb() -> bytes:
    class Payload:
        def __reduce__(self) -> tuple:
            return (os.system, ("echo PWNED",))

    return _saved({"state_dict": {"w": Payload()}})


def _saved(obj: Any) -> bytes:
    """The bytes `torch.save` writes for `obj`."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _checkpoint(hparams: dict) -> bytes:
    return _saved({"state_dict": {}, "hyper_parameters": hparams})


def _mp4_cut_in_half(tmp: Path) -> bytes:
    path = tmp / "whole.mp4"
    write_video(path, np.zeros((24, 32, 32, 3), dtype=np.uint8), fps=8)
    data = path.read_bytes()
    return data[: len(data) // 2]


CASES = [
    # AVA groundtruth CSV
    Case("AVA CSV: empty file", "train.csv", b"", read_annotations, "empty: expected rows"),
    Case(
        "AVA CSV: UTF-8 BOM",
        "train.csv",
        BOM + AVA_ROW,
        read_annotations,
        check=lambda r: _keys(r) == {("syn_a", 902)},
    ),
    Case(
        "AVA CSV: non-UTF-8 byte",
        "train.csv",
        AVA_ROW + b"syn_\xff,0903,0.1,0.2,0.5,0.9,3,0\n",
        read_annotations,
        "not UTF-8 text \\(byte 0xff",
        line=2,
    ),
    Case(
        "AVA CSV: wrong column count",
        "train.csv",
        b"syn_a,0902,0.1,0.2,0.5\n",
        read_annotations,
        "expected 8 columns",
        line=1,
    ),
    Case(
        "AVA CSV: timestamp not an integer",
        "train.csv",
        b"syn_a,09:02,0.1,0.2,0.5,0.9,3,0\n",
        read_annotations,
        "expected an integer timestamp",
        line=1,
    ),
    Case(
        "AVA CSV: box outside [0, 1]",
        "train.csv",
        b"syn_a,0902,0.1,0.2,1.5,0.9,3,0\n",
        read_annotations,
        "expected x2 in \\[0, 1\\]",
        line=1,
    ),
    Case(
        "AVA CSV: action id not in the label map",
        "train.csv",
        AVA_ROW + b"syn_a,0902,0.1,0.2,0.5,0.9,99,0\n",
        lambda p: read_annotations(p, allowed_classes={3}),
        check=lambda r: r[1] == 1,  # counted skip
    ),
    # AVA prediction CSV (the fast column reader of the evaluator)
    Case(
        "AVA predictions: UTF-8 BOM",
        "pred.csv",
        BOM + DETECTION_ROW,
        read_detection_rows,
        check=lambda r: r.keyframes == [("syn_a", 902)],
    ),
    Case(
        "AVA predictions: non-UTF-8 byte",
        "pred.csv",
        DETECTION_ROW + b"syn_\xe9,0903,0.1,0.2,0.5,0.9,3,0.5\n",
        read_detection_rows,
        "not UTF-8 text",
        line=2,
    ),
    # proposals
    Case("proposals: empty file", "props.csv", b"", read_proposals, "empty: expected rows"),
    Case(
        "proposals: 7th column not empty",
        "props.csv",
        b"syn_a,0902,0.1,0.2,0.5,0.9,x,0.9\n",
        read_proposals,
        "expected an empty 7th column",
        line=1,
    ),
    Case(
        "proposals: score not finite",
        "props.csv",
        b"syn_a,0902,0.1,0.2,0.5,0.9,,nan\n",
        read_proposals,
        "expected a finite float score",
        line=1,
    ),
    Case(
        "proposals: score below proposal_min_score",
        "props.csv",
        PROPOSAL_ROW + b"syn_a,0903,0.1,0.2,0.5,0.9,,0.1\n",
        lambda p: read_proposals(p, min_score=0.5),
        check=lambda r: r[1] == 1,  # counted skip
    ),
    # label map
    Case(
        "pbtxt: UTF-8 BOM",
        "labels.pbtxt",
        BOM + LABEL_MAP,
        read_label_map,
        check={3: "stand"}.__eq__,
    ),
    Case(
        "pbtxt: unterminated string",
        "labels.pbtxt",
        b'item {\n  name: "stand\n  id: 3\n}\n',
        read_label_map,
        "expected a terminated quoted string",
        line=2,
    ),
    Case(
        "pbtxt: block without an id",
        "labels.pbtxt",
        b'item {\n  name: "stand"\n}\n',
        read_label_map,
        "expected 'id' or 'label_id'",
        line=1,
    ),
    Case(
        "pbtxt: non-UTF-8 byte",
        "labels.pbtxt",
        b'item {\n  name: "st\xe4nd"\n  id: 3\n}\n',
        read_label_map,
        "not UTF-8 text",
        line=2,
    ),
    # captions JSONL
    Case(
        "captions JSONL: UTF-8 BOM",
        "v.jsonl",
        BOM + CAPTIONS,
        read_caption_file,
        check={0: "a person stands"}.__eq__,
    ),
    Case(
        "captions JSONL: non-UTF-8 byte",
        "v.jsonl",
        CAPTIONS + b'{"frame": 1, "caption": "caf\xe9"}\n',
        read_caption_file,
        "not UTF-8 text",
        line=2,
    ),
    Case(
        "captions JSONL: invalid JSON",
        "v.jsonl",
        CAPTIONS + b'{"frame": 1, "caption": }\n',
        read_caption_file,
        "invalid JSON",
        line=2,
    ),
    Case(
        "captions JSONL: frame twice",
        "v.jsonl",
        CAPTIONS + CAPTIONS,
        read_caption_file,
        "got frame 0 again",
        line=2,
    ),
    Case("captions JSONL: empty file", "v.jsonl", b"", read_caption_file, "expected at least one"),
    # EPIC-KITCHENS-100 annotations
    Case(
        "EK-100 CSV: UTF-8 BOM",
        "EPIC_100_train.csv",
        BOM + EK_HEADER + EK_ROW,
        read_epic_annotations,
        check=lambda r: [s.narration_id for s in r] == ["P01_01_0"],
    ),
    Case(
        "EK-100 CSV: header only",
        "EPIC_100_train.csv",
        EK_HEADER,
        read_epic_annotations,
        "empty: expected at least one segment row",
    ),
    Case(
        "EK-100 CSV: column missing from the header",
        "EPIC_100_train.csv",
        EK_HEADER.replace(b"verb_class,", b""),
        read_epic_annotations,
        "missing \\['verb_class'\\]",
        line=1,
    ),
    Case(
        "EK-100 CSV: bad timestamp",
        "EPIC_100_train.csv",
        EK_HEADER + EK_ROW.replace(b"00:00:02.00", b"2 s"),
        read_epic_annotations,
        "stop_timestamp",
        line=2,
    ),
    Case(
        "EK-100 CSV: non-UTF-8 byte",
        "EPIC_100_train.csv",
        EK_HEADER + EK_ROW.replace(b"open tap", b"\xf6ffne tap"),
        read_epic_annotations,
        "not UTF-8 text",
        line=2,
    ),
    # Breakfast
    Case(
        "Breakfast mapping: UTF-8 BOM",
        "mapping.txt",
        BOM + MAPPING,
        read_mapping,
        check=["SIL", "pour_milk"].__eq__,
    ),
    Case("Breakfast mapping: empty file", "mapping.txt", b"", read_mapping, "expected at least"),
    Case(
        "Breakfast mapping: ids out of order",
        "mapping.txt",
        b"1 SIL\n",
        read_mapping,
        "expected id 0",
        line=1,
    ),
    Case(
        "Breakfast mapping: non-UTF-8 byte",
        "mapping.txt",
        MAPPING + b"2 r\xfchren\n",
        read_mapping,
        "not UTF-8 text",
        line=3,
    ),
    Case(
        "Breakfast groundTruth: unknown sub-action",
        "P03_cam01_P03_tea.txt",
        b"SIL\nstir_tea\n",
        lambda p: read_groundtruth(p, {"SIL": 0}),
        "stir_tea",
        line=2,
    ),
    # videos
    Case("video: not a video", "v.mp4", os.urandom(256), _video, "expected a decodable video"),
    Case("video: empty file", "v.mp4", b"", _video, "expected a decodable video"),
    # checkpoints
    Case("checkpoint: empty file", "m.ckpt", b"", read_checkpoint, "not a PyTorch checkpoint"),
    Case(
        "checkpoint: random bytes",
        "m.ckpt",
        os.urandom(256),
        read_checkpoint,
        "not a PyTorch checkpoint",
    ),
    Case(
        "checkpoint: truncated",
        "m.ckpt",
        _checkpoint({"backbone": {}})[:200],
        read_checkpoint,
        "not a PyTorch checkpoint",
    ),
    Case(
        "checkpoint: pickled code (os.system)",
        "m.ckpt",
        _bomb(),
        read_checkpoint,
        "refused: the checkpoint holds Python objects .* posix.system",
    ),
    Case(
        "checkpoint: stored config names builtins.print",
        "m.ckpt",
        _checkpoint({"memory": {"text_encoder": {"_target_": "builtins.print"}}}),
        read_checkpoint,
        "memory.text_encoder._target_='builtins.print' is not an allowed target",
    ),
    Case(
        "weights file (pretrained=): random bytes",
        "init.pth",
        os.urandom(256),
        read_state_dict,
        "not a PyTorch checkpoint",
    ),
    Case(
        "checkpoint: not a Lightning checkpoint",
        "m.ckpt",
        _saved({"w": torch.zeros(2)}),
        read_checkpoint,
        "not a Lightning checkpoint \\(no state_dict entry\\)",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_named_or_counted(case: Case, tmp_path: Path) -> None:
    path = tmp_path / case.file
    path.write_bytes(case.content)
    if case.error is None:
        assert case.check is not None and case.check(case.read(path))
        return
    with pytest.raises(Exception) as err:  # noqa: PT011 - the message is what is checked
        case.read(path)
    message = str(err.value)
    where = f"{path}:{case.line}: " if case.line is not None else f"{path}"
    assert message.startswith(where), message
    assert re.search(case.error, message), message
    assert "weights_only=False" not in message


def test_bom_in_groundtruth_scores_identical_files_at_map_1(tiny_world: Path, tmp_path: Path):
    """A BOM no longer turns the first video id into '\\ufeffsyn_...' (its keyframe dropped)."""
    annotations = tiny_world / "annotations"
    val = (annotations / "val.csv").read_bytes()
    groundtruth = tmp_path / "val_bom.csv"
    groundtruth.write_bytes(BOM + val)
    predictions = tmp_path / "predictions.csv"
    predictions.write_bytes(
        b"".join(
            b",".join(row.split(b",")[:7] + [b"1.0"]) + b"\n" for row in val.splitlines() if row
        )
    )
    result = evaluate_ava_files(groundtruth, predictions, annotations / "action_list.pbtxt")
    assert result.mean_ap == pytest.approx(1.0)


def test_empty_train_csv_is_an_error_naming_it(make_cfg, tmp_path: Path) -> None:
    """Not "No training batches" and an untrained model reported as final weights."""
    empty = tmp_path / "train.csv"
    empty.write_bytes(b"")
    with pytest.raises(Exception, match=f"{empty}: empty: expected rows"):
        train(make_cfg(["debug=fdr", f"data.train_csv={empty}"]))


def test_truncated_mp4_error_says_the_index_is_missing_and_how_to_remux(tmp_path: Path) -> None:
    path = tmp_path / "cut.mp4"
    path.write_bytes(_mp4_cut_in_half(tmp_path))
    with pytest.raises(Exception, match="index \\(the MP4 'moov' box.*-movflags \\+faststart"):
        probe_video(path)


CONFIG_CASES = [
    ("config: batch size 0", ["data.batch_size=0"], "data.batch_size: expected a positive integer"),
    (
        "config: foreign _target_",
        ["+callbacks.evil._target_=os.system"],
        "callbacks.evil._target_='os.system' is not an allowed target",
    ),
    (
        "config: unknown memory type",
        ["memory.kind=telepathy"],
        "memory.kind: expected one of",
    ),
]


@pytest.mark.parametrize(
    "overrides, error", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES]
)
def test_bad_config_value_names_the_key(overrides: list[str], error: str) -> None:
    cfg = compose_config("train", overrides)
    with pytest.raises(ValueError, match=re.escape(error) if "'" in error else error):
        validate_config(cfg)

"""The dataset doctor on synthetic AVA / EK-100 / Breakfast worlds: clean, then broken one way.

Each broken copy must be reported exactly: one error row, naming the check and the file (and
line) of the problem, and nothing else in error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.common import REAL_DATA
from helpers.data import TINY_EPIC
from tinymem.data.ava.formats import AvaBox, write_annotations, write_label_map
from tinymem.data.ava.frames import frame_file, write_frame_list
from tinymem.data.breakfast.synthetic import write_avi
from tinymem.data.epic_kitchens.synthetic import SyntheticEpicSpec, ensure_synthetic_epic
from tinymem.data.frame_sources import VideoFileSource
from tinymem.data.video import write_video
from tinymem.doctor.report import Check, Status
from tinymem.tools.check_data import diagnose, main, overrides_of


@pytest.fixture(scope="module")
def epic_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic EK-100 world with frame folders and videos."""
    spec = SyntheticEpicSpec(**{**TINY_EPIC, "num_train_videos": 2})  # 4 videos in all
    return ensure_synthetic_epic(tmp_path_factory.mktemp("epic") / "world", spec)


def errors(root: Path, data: str, *extra: str) -> list[Check]:
    """Error rows of the doctor on ``root`` with data config ``data``."""
    report = diagnose([f"data={data}", f"data.root={root}", *extra])
    return [check for check in report.checks if check.status == Status.ERROR]


def copy(world: Path, tmp_path: Path) -> Path:
    """A copy of a world that a test may break."""
    return Path(shutil.copytree(world, tmp_path / "copy"))


def truncate(path: Path, frames: int) -> None:
    """Rewrite a video with only its first ``frames`` (black) frames, same size and rate."""
    source = VideoFileSource(path)
    fps = round(source.fps)
    height, width = source.read([0]).shape[-2:]
    black = np.zeros((frames, height, width, 3), np.uint8)
    if path.suffix == ".avi":
        write_avi(path, black, fps)
    else:
        path.unlink()
        write_video(path, black, fps)


def only(checks: list[Check], name: str, where: str, detail: str = "") -> None:
    """Exactly one error, of check ``name``, about ``where``, saying ``detail``."""
    assert len(checks) == 1, [(c.name, c.detail) for c in checks]
    assert checks[0].name == name and where in checks[0].where and detail in checks[0].detail


# ---------------------------------------------------------------------------------------------
# clean worlds pass


def test_clean_ava_world_passes_and_prints_a_table(tiny_world: Path, capsys) -> None:
    assert main(["data=synthetic", f"data.root={tiny_world}", "--sample", "2"]) == 0
    out = capsys.readouterr().out
    for row in ("label map", "train annotations", "video files present", "decode time", "disk"):
        assert row in out
    assert "2 sampled of 6" in out and " 0 errors" in out


@pytest.mark.parametrize("source", ["frames", "video"])
def test_clean_epic_world_passes(epic_world: Path, source: str) -> None:
    report = diagnose(["data=synthetic_epic", f"data.root={epic_world}", f"data.source={source}"])
    assert not report.failed, report.checks
    names = {check.name for check in report.checks}
    what = "frame folder" if source == "frames" else "video file"
    assert {"train/validation split", "video info", "decode time", f"{what} length"} <= names
    assert ("frame rate" in names) == (source == "video")  # checked against the video info


def test_clean_breakfast_world_passes(breakfast_world: Path) -> None:
    report = diagnose(["data=synthetic_breakfast", f"data.root={breakfast_world}", "sample=3"])
    assert not report.failed, report.checks
    details = {check.name: check.detail for check in report.checks}
    assert details["annotation files"].endswith("named <video> without a suffix)")
    assert details["frame rate"].startswith("3 as listed")


# ---------------------------------------------------------------------------------------------
# AVA: one problem each


def test_ava_missing_video(tiny_world: Path, tmp_path: Path) -> None:
    root = copy(tiny_world, tmp_path)
    video = sorted((root / "videos").glob("*.mp4"))[0]
    video.unlink()
    only(errors(root, "synthetic"), "video files present", video.stem, "1 of 6 missing")


def test_ava_truncated_video(tiny_world: Path, tmp_path: Path) -> None:
    root = copy(tiny_world, tmp_path)
    video = sorted((root / "videos").glob("*.mp4"))[0]
    truncate(video, 4)
    only(errors(root, "synthetic"), "video file length", "annotations/", "too short (truncated?)")


def test_ava_malformed_row(tiny_world: Path, tmp_path: Path) -> None:
    root = copy(tiny_world, tmp_path)
    path = root / "annotations" / "train.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",", ";", 1)
    path.write_text("\n".join(lines) + "\n")
    only(errors(root, "synthetic"), "train annotations", f"{path}:3", "expected 8 columns")


def test_ava_unknown_class(tiny_world: Path, tmp_path: Path) -> None:
    root = copy(tiny_world, tmp_path)
    path = root / "annotations" / "val.csv"
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")
    lines[1] = ",".join([*fields[:6], "99", fields[7]])
    path.write_text("\n".join(lines) + "\n")
    only(errors(root, "synthetic"), "val class ids", f"{path}:2", "unknown class), first 99")


def write_jpeg_world(root: Path, frames: dict[str, int]) -> list[str]:
    """AVA's JPEG layout: vidA (train) and vidB (val), keyframes 902-903, 30 fps frames."""
    for video, count in frames.items():
        (root / "frames" / video).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (16, 16), (i,) * 3).save(root / "frames" / frame_file(video, i))
    (root / "frame_lists").mkdir()
    for split in ("train", "val"):
        write_frame_list(root / "frame_lists" / f"{split}.csv", frames)
    (root / "annotations").mkdir()
    for split, video in (("train", "vidA"), ("val", "vidB")):
        truth = {(video, s): [AvaBox((0.25, 0.25, 0.75, 0.75), [1], 0)] for s in (902, 903)}
        write_annotations(root / "annotations" / f"{split}.csv", truth)
    write_label_map(root / "annotations" / "labels.pbtxt", {1: "bend/bow (at the waist)"})
    return [
        f"data.root={root}",
        "data.train_csv=annotations/train.csv",
        "data.val_csv=annotations/val.csv",
        "data.label_map=annotations/labels.pbtxt",
        "data.val_proposals=null",
        "data.val_excluded=null",
        "data.num_classes=null",
    ]


def test_ava_jpeg_layout_passes_then_reports_a_short_frame_list(tmp_path: Path) -> None:
    args = ["data=ava", *write_jpeg_world(tmp_path, {"vidA": 120, "vidB": 120})]
    report = diagnose(args)
    assert not report.failed, report.checks
    assert {"train frame list", "frame folder length", "decode time"} <= {
        c.name for c in report.checks
    }
    write_frame_list(tmp_path / "frame_lists" / "val.csv", {"vidA": 120, "vidB": 80})
    checks = [c for c in diagnose(args).checks if c.status == Status.ERROR]
    # keyframe 903 is frame (903 - 900) * 30 = 90 of vidB, which now has 80 frames
    only(checks, "frame folder length", "val.csv:", "vidB: 80 frames, but an annotation starts")
    # a frame in the middle that does not decode: found when a clip is timed
    write_frame_list(tmp_path / "frame_lists" / "val.csv", {"vidA": 120, "vidB": 120})
    broken = tmp_path / "frames" / frame_file("vidA", 60)
    broken.write_bytes(b"not a jpeg")
    checks = [c for c in diagnose(args).checks if c.status == Status.ERROR]
    only(checks, "clip decoding", str(broken), "expected a decodable JPEG file")


# ---------------------------------------------------------------------------------------------
# EK-100: one problem each (video files)


def _epic_video(root: Path) -> Path:
    return sorted((root / "EPIC-KITCHENS").glob("*/videos/*.MP4"))[0]


def test_epic_truncated_video(epic_world: Path, tmp_path: Path) -> None:
    root = copy(epic_world, tmp_path)
    truncate(_epic_video(root), 2)
    checks = errors(root, "synthetic_epic", "data.source=video")
    only(checks, "video file length", "EPIC_100_", "too short (truncated?)")


def _edit_epic_row(root: Path, edit) -> Path:
    path = root / "epic-kitchens-100-annotations" / "EPIC_100_train.csv"
    lines = path.read_text().splitlines()
    lines[3] = edit(lines[3])
    path.write_text("\n".join(lines) + "\n")
    return path


def test_epic_malformed_row(epic_world: Path, tmp_path: Path) -> None:
    root = copy(epic_world, tmp_path)
    path = _edit_epic_row(root, lambda line: line.replace(":", "h", 1))
    only(errors(root, "synthetic_epic", "data.source=video"), "train annotations", f"{path}:4")


def test_epic_unknown_class(epic_world: Path, tmp_path: Path) -> None:
    root = copy(epic_world, tmp_path)

    def edit(line: str) -> str:
        fields = line.split(",")
        fields[10] = "97"  # verb_class: 97 verbs, ids 0..96
        return ",".join(fields)

    path = _edit_epic_row(root, edit)
    checks = errors(root, "synthetic_epic", "data.source=video")
    only(checks, "train annotations", f"{path}:4", "expected verb_class in [0, 96], got 97")


# ---------------------------------------------------------------------------------------------
# Breakfast: one problem each


def _breakfast_video(root: Path) -> Path:
    return sorted((root / "BreakfastII_15fps_qvga_sync").rglob("*.avi"))[0]


@pytest.mark.parametrize(
    ("world", "video_of", "data", "detail"),
    [
        ("epic_world", _epic_video, ["synthetic_epic", "data.source=video"], "1 of 4 missing"),
        ("breakfast_world", _breakfast_video, ["synthetic_breakfast"], "1 of "),
    ],
    ids=["epic", "breakfast"],
)
def test_missing_video(world, video_of, data, detail, request, tmp_path: Path) -> None:
    root = copy(request.getfixturevalue(world), tmp_path)
    video = video_of(root)
    video.unlink()
    only(errors(root, *data), "video files present", str(video), detail)


def test_breakfast_truncated_video(breakfast_world: Path, tmp_path: Path) -> None:
    root = copy(breakfast_world, tmp_path)
    truncate(_breakfast_video(root), 3)
    checks = errors(root, "synthetic_breakfast")
    only(checks, "video file length", "groundTruth/", "too short (truncated?)")


def _groundtruth_line(root: Path, text: str) -> Path:
    path = sorted((root / "groundTruth").iterdir())[0]
    lines = path.read_text().splitlines()
    lines[4] = text
    path.write_text("\n".join(lines) + "\n")
    return path


def test_breakfast_malformed_row(breakfast_world: Path, tmp_path: Path) -> None:
    root = copy(breakfast_world, tmp_path)
    path = _groundtruth_line(root, "SIL pour_milk")
    checks = errors(root, "synthetic_breakfast")
    only(checks, "annotations parse", f"{path}:5", "expected one sub-action name per line")


def test_breakfast_unknown_class(breakfast_world: Path, tmp_path: Path) -> None:
    root = copy(breakfast_world, tmp_path)
    path = _groundtruth_line(root, "juggle_eggs")
    checks = errors(root, "synthetic_breakfast")
    only(checks, "annotations parse", f"{path}:5", "listed in mapping.txt, got 'juggle_eggs'")


# ---------------------------------------------------------------------------------------------
# command line


def test_sample_option_and_bad_arguments(tiny_world: Path, capsys) -> None:
    assert overrides_of(["data=ava", "--sample", "3", "--sample=4"]) == [
        "data=ava",
        "sample=3",
        "sample=4",
    ]
    assert main(["data=synthetic", f"data.root={tiny_world}", "sample=0"]) == 2
    assert "sample: expected null or an integer >= 1" in capsys.readouterr().err
    assert main(["data=nonexistent"]) == 2
    assert main(["--frobnicate"]) == 2


def test_real_files_here_give_their_counts() -> None:
    real = REAL_DATA
    assert real.is_dir(), f"{real} is missing: every checkout has ../shared/real_data"
    report = diagnose(
        [
            "data=epic_kitchens",
            f"data.root={real / 'epic_kitchens'}",
            "data.train_csv=null",
            "data.val_csv=EPIC_100_validation.csv",
            "data.video_info_csv=EPIC_100_video_info.csv",
        ]
    )
    rows = {check.name: check for check in report.checks}
    assert rows["validation segments"].detail == "9668, as the official release"
    assert rows["videos in the video info"].detail == "700, as the official release"
    assert rows["train annotations"].status == Status.WARNING
    # no media here: every frame folder is reported missing, and that is the only error
    only([c for c in report.checks if c.status == Status.ERROR], "frame folders present", "P01")

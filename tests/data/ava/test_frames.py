"""AVA's public JPEG frame layout: frame lists, keyframe-to-frame mapping, clips, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from helpers.data import ava_datamodule
from tinymem.config import compose_config
from tinymem.data.ava.datamodule import AvaDataModule
from tinymem.data.ava.dataset import AvaAugment
from tinymem.data.ava.formats import AvaBox, write_annotations, write_label_map, write_proposals
from tinymem.data.ava.frames import (
    FRAME_LIST_HEADER,
    frame_file,
    read_frame_list,
    write_frame_list,
)
from tinymem.errors import DataFormatError
from tinymem.normalize import VIDEO_MEAN, VIDEO_STD

FPS = 30
SIZE = 16
NUM_FRAMES = 4 * FPS  # seconds 900..903
LEVEL = 2  # frame i has grey level LEVEL * i: the frame index survives JPEG
BOX = (0.25, 0.25, 0.75, 0.75)


def write_jpeg_world(root: Path, videos: dict[str, int]) -> None:
    """Frames in the AVA JPEG layout (grey = 2 * frame index), frame lists, annotations."""
    for video, count in videos.items():
        (root / "frames" / video).mkdir(parents=True)
        for i in range(count):
            image = Image.new("RGB", (SIZE, SIZE), (LEVEL * i,) * 3)
            image.save(root / "frames" / frame_file(video, i), quality=95)
    (root / "frame_lists").mkdir()
    write_frame_list(root / "frame_lists" / "train.csv", videos)
    write_frame_list(root / "frame_lists" / "val.csv", videos)
    (root / "annotations").mkdir()
    truth = {(v, s): [AvaBox(BOX, [1], person_id=0)] for v in videos for s in (902, 903)}
    write_annotations(root / "annotations" / "train.csv", truth)
    write_annotations(root / "annotations" / "val.csv", truth)
    proposals = {key: [AvaBox(BOX, [], score=0.95)] for key in truth}
    write_proposals(root / "annotations" / "proposals.csv", proposals)
    write_label_map(root / "annotations" / "labels.pbtxt", {1: "bend/bow", 2: "crouch/kneel"})


def jpeg_datamodule(root: Path, **kwargs) -> AvaDataModule:
    """An AvaDataModule on the JPEG layout under root (4 frames x 2, 16 px, no augmentation)."""
    settings = dict(
        label_map="annotations/labels.pbtxt",
        val_proposals="annotations/proposals.csv",
        val_excluded=None,
        crop_size=SIZE,
        batch_size=1,
        eval_batch_size=1,
        frame_layout="jpeg",
        frame_lists={"train": "frame_lists/train.csv", "val": "frame_lists/val.csv"},
        frame_fps=FPS,
    )
    return ava_datamodule(root, **{**settings, **kwargs})


def frame_indices(clip: torch.Tensor) -> list[int]:
    """Frame index of every frame of a normalised [3, T, H, W] clip, read from its grey level."""
    grey = clip.mean(dim=0) * VIDEO_STD[0] + VIDEO_MEAN[0]  # [T, H, W] in [0, 1]
    return [round(float(level) * 255 / LEVEL) for level in grey.mean(dim=(1, 2))]


@pytest.fixture
def jpeg_world(tmp_path: Path) -> Path:
    """One 4-second video 'vidA' (keyframes 902, 903) in the JPEG layout."""
    write_jpeg_world(tmp_path, {"vidA": NUM_FRAMES})
    return tmp_path


def test_frame_list_round_trip_and_real_header(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    write_frame_list(path, {"-5KQ66BBWC4": 3, "053oq2xB3oU": 2})
    lines = path.read_text().splitlines()
    assert lines[0] == "original_vido_id video_id frame_id path labels"  # the real typo
    assert lines[1] == '-5KQ66BBWC4 0 0 -5KQ66BBWC4/-5KQ66BBWC4_000001.jpg ""'
    assert lines[5] == '053oq2xB3oU 1 1 053oq2xB3oU/053oq2xB3oU_000002.jpg ""'
    assert read_frame_list(path) == {"-5KQ66BBWC4": 3, "053oq2xB3oU": 2}
    assert FRAME_LIST_HEADER[0] == "original_vido_id"


@pytest.mark.parametrize(
    ("lines", "line", "expected"),
    [
        (["original_video_id video_id frame_id path labels"], 1, "expected the header"),
        (['v 0 0 v/v_000001.jpg ""', "v 0 1"], 3, "5 space-separated fields"),
        (['v 0 0 v/v_000001.jpg ""', 'v 0 2 v/v_000003.jpg ""'], 3, "frame_id 1"),
        (['v 0 0 v/v_000000.jpg ""'], 2, "expected path 'v/v_000001.jpg'"),
        (['v 0 0 v/v_000001.jpg ""', 'v 1 1 v/v_000002.jpg ""'], 3, "video_id 0"),
        (['v x 0 v/v_000001.jpg ""'], 2, "integer video_id"),
    ],
)
def test_frame_list_errors_name_file_and_line(tmp_path: Path, lines, line, expected) -> None:
    path = tmp_path / "list.csv"
    header = [] if lines[0].startswith("original") else [" ".join(FRAME_LIST_HEADER)]
    path.write_text("\n".join(header + lines) + "\n")
    with pytest.raises(DataFormatError) as info:
        read_frame_list(path)
    assert str(info.value).startswith(f"{path}:{line}: ") and expected in str(info.value)


def test_keyframe_maps_to_frame_30_per_second_after_900(jpeg_world: Path) -> None:
    dm = jpeg_datamodule(jpeg_world)
    dm.setup()
    train = dm.datasets["train"]
    assert [train.items[i] for i in train.videos[0]] == [("vidA", 902), ("vidA", 903)]
    # keyframe 902 -> frame (902 - 900) * 30 = 60; clip range(60 - 4, 60 + 4, 2)
    assert frame_indices(train[0]["video"]) == [56, 58, 60, 62]
    assert frame_indices(train[1]["video"]) == [86, 88, 90, 92]
    assert torch.allclose(train[0]["boxes"], torch.tensor([BOX]))
    val = dm.datasets["val"][0]  # proposals at evaluation
    assert val["box_scores"].tolist() == pytest.approx([0.95])


def test_clip_is_clamped_at_the_video_edges(jpeg_world: Path) -> None:
    # 16 x 8 around frame 90 reaches past the last frame (119) and is clamped there
    dm = jpeg_datamodule(jpeg_world, num_frames=16, sample_rate=8)
    dm.setup()
    assert frame_indices(dm.datasets["train"][1]["video"]) == [
        min(i, NUM_FRAMES - 1) for i in range(90 - 64, 90 + 64, 8)
    ]
    dm = jpeg_datamodule(jpeg_world, num_frames=8, sample_rate=20)  # 902: range(-20, 140, 20)
    dm.setup()
    expected = [min(max(i, 0), NUM_FRAMES - 1) for i in range(60 - 80, 60 + 80, 20)]
    assert frame_indices(dm.datasets["train"][0]["video"]) == expected


def test_missing_frame_file_names_the_file(jpeg_world: Path) -> None:
    victim = jpeg_world / "frames" / frame_file("vidA", 58)
    victim.unlink()
    dm = jpeg_datamodule(jpeg_world)
    dm.setup()
    with pytest.raises(DataFormatError, match="vidA_000059.jpg"):
        dm.datasets["train"][0]


def test_video_without_frames_is_skipped_and_counted(tmp_path: Path) -> None:
    write_jpeg_world(tmp_path, {"vidA": NUM_FRAMES, "vidB": NUM_FRAMES})
    write_frame_list(tmp_path / "frame_lists" / "train.csv", {"vidA": NUM_FRAMES})  # no vidB
    dm = jpeg_datamodule(tmp_path)
    dm.setup()
    assert dm.datasets["train"].video_names == ["vidA"]
    assert dm.datasets["val"].video_names == ["vidA", "vidB"]
    assert dm.skipped["keyframes of videos without frames (skipped)"] == 2
    write_frame_list(tmp_path / "frame_lists" / "train.csv", {})  # no train video has frames
    with pytest.raises(DataFormatError, match="expected frames for the train videos"):
        jpeg_datamodule(tmp_path).setup()


def test_unknown_action_ids_are_skipped_and_counted(jpeg_world: Path) -> None:
    path = jpeg_world / "annotations" / "train.csv"
    path.write_text(path.read_text() + "vidA,0903,0.100,0.100,0.200,0.200,77,1\n")
    dm = jpeg_datamodule(jpeg_world)
    dm.setup()
    assert dm.skipped["annotation rows with an unknown action id (skipped)"] == 1
    assert len(dm.datasets["train"][1]["boxes"]) == 1
    # with num_classes the model's classes are 1..num_classes (index = id - 1)
    dm = jpeg_datamodule(jpeg_world, num_classes=80)
    dm.setup()
    assert dm.class_ids == list(range(1, 81))
    assert dm.skipped["annotation rows with an unknown action id (skipped)"] == 0
    assert dm.datasets["train"][1]["labels"].shape == (2, 80)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("vidA,09o3,0.1,0.1,0.2,0.2,1,0", "train.csv:3: expected an integer timestamp"),
        ("vidA,0903,0.3,0.1,0.2,0.2,1,0", "train.csv:3: expected x1 <= x2"),
    ],
)
def test_bad_annotation_rows_name_file_and_line(jpeg_world: Path, row, expected) -> None:
    path = jpeg_world / "annotations" / "train.csv"
    path.write_text(path.read_text() + row + "\n")
    with pytest.raises(DataFormatError, match=expected):
        jpeg_datamodule(jpeg_world).setup()


def test_jpeg_layout_config_needs_its_keys(jpeg_world: Path) -> None:
    with pytest.raises(ValueError, match="data.frame_layout"):
        jpeg_datamodule(jpeg_world, frame_layout="png")
    with pytest.raises(ValueError, match="data.frame_lists"):
        jpeg_datamodule(jpeg_world, frame_lists={"train": "frame_lists/train.csv"})


def test_ava_config_builds_the_recipe() -> None:
    cfg = compose_config("train", ["data=ava", "data.root=/nonexistent"])
    dm = instantiate(cfg.data)
    options = dm.options
    assert options.frame_layout == "jpeg" and options.frame_fps == FPS
    assert dm.class_ids == list(range(1, 81))
    assert options.augment == AvaAugment(kind="ava", short_side=(256, 320))
    assert (options.num_frames, options.sample_rate, options.proposal_min_score) == (16, 4, 0.9)
    synthetic = instantiate(compose_config("train", []).data)
    assert synthetic.options.augment == AvaAugment(kind="basic")
    assert synthetic.options.frame_layout == "video"

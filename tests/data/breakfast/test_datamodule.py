"""Breakfast: files, subject splits, both tasks, the metric and the datamodule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from tinymem.config import compose_config
from tinymem.data.breakfast.datamodule import BreakfastDataModule
from tinymem.data.breakfast.dataset import (
    BreakfastActivityClips,
    BreakfastSegments,
    video_frame_samples,
)
from tinymem.data.breakfast.formats import (
    ACTIVITIES,
    BreakfastAnnotation,
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
from tinymem.data.breakfast.synthetic import (
    GROUNDTRUTH_DIR,
    SEGMENTATION_DIR,
    VIDEO_DIR,
    VIDEO_PATTERN,
    SyntheticBreakfastSpec,
    ensure_synthetic_breakfast,
)
from tinymem.data.clip_dataset import IGNORE_LABEL
from tinymem.data.clip_transforms import build_clip_transform
from tinymem.data.errors import DataFormatError
from tinymem.data.frame_sources import FrameSource
from tinymem.lit.classification import ClassificationModule
from tinymem.memory.captions import CaptionStore
from tinymem.metrics.breakfast import BreakfastMetrics
from tinymem.pipeline import task_kwargs

CLASSES = {"SIL": 0, "take_bowl": 1, "pour_cereals": 2, "pour_milk": 3}
TINY_BREAKFAST = dict(
    seed=0,
    activities=["cereals", "coffee"],
    segment_frames=[4, 6],
    sil_frames=[2, 4],
    frame_size=32,
)


class BlankSource(FrameSource):
    """A video of ``count`` black frames."""

    def __init__(self, count: int) -> None:
        self.count = count

    @property
    def num_frames(self) -> int:
        return self.count

    def exists(self) -> bool:
        return True

    def read(self, indices):
        return torch.zeros(len(indices), 3, 8, 8, dtype=torch.uint8)


@pytest.fixture(scope="module")
def breakfast_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_synthetic_breakfast(
        tmp_path_factory.mktemp("breakfast") / "world", SyntheticBreakfastSpec(**TINY_BREAKFAST)
    )


def _datamodule(root: Path, task: str = "subaction", **kwargs) -> BreakfastDataModule:
    options = dict(
        root=str(root),
        task=task,
        split=1,
        mapping="mapping.txt",
        annotation_format="groundtruth",
        groundtruth_dir=GROUNDTRUTH_DIR,
        segmentation_dir=SEGMENTATION_DIR,
        train_bundle="splits/train.split1.bundle",
        test_bundle="splits/test.split1.bundle",
        video_dir=VIDEO_DIR,
        video_pattern=VIDEO_PATTERN,
        stereo_video_pattern="{subject}/stereo/{subject}_{activity}_ch1.avi",
        caption_dir="captions",
        num_frames=4,
        sample_rate=2,
        frames_per_video=16,
        crop_size=24,
        train_short_side=[24, 28],
        eval_short_side=24,
        batch_size=2,
        eval_batch_size=2,
    )
    options.update(kwargs)
    return BreakfastDataModule(**options)


# ---------------------------------------------------------------------------------------------
# files


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


# ---------------------------------------------------------------------------------------------
# splits


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


# ---------------------------------------------------------------------------------------------
# task datasets


def _options(tmp_path: Path) -> dict:
    return dict(
        captions=CaptionStore(tmp_path / "none"),
        num_frames=4,
        crop_size=8,
        transform=build_clip_transform(False, 8, (8, 8), 8),
    )


def test_segment_clips_are_clamped_at_the_video_edges(tmp_path: Path) -> None:
    video = parse_video_name("P03_cam01_P03_cereals")
    segments = (Segment(0, 3, 0, 1), Segment(4, 89, 1, 2), Segment(90, 99, 0, 3))
    annotation = BreakfastAnnotation(video, segments, tmp_path / "gt.txt")
    dataset = BreakfastSegments(
        [annotation], {video.name: BlankSource(95)}, sample_rate=4, **_options(tmp_path)
    )
    assert dataset.frame_indices(0) == [0, 0, 1, 5]  # centre 1: range(-7, 9, 4) clamped at 0
    assert dataset.frame_indices(1) == [38, 42, 46, 50]
    assert dataset.frame_indices(2) == [86, 90, 94, 94]  # centre 94: 98 clamped to 94
    assert [dataset[i]["label"] for i in range(3)] == [0, 1, 0]
    assert [dataset[i]["clip_index"] for i in range(3)] == [0, 1, 2]
    late = BreakfastAnnotation(video, (Segment(0, 99, 0, 1), Segment(100, 120, 1, 7)), Path("gt"))
    dataset = BreakfastSegments(
        [late], {video.name: BlankSource(95)}, sample_rate=4, **_options(tmp_path)
    )
    with pytest.raises(DataFormatError, match=r"gt:7: segment starts at frame 101"):
        dataset[1]


def test_activity_clips_cover_256_frames_in_order(tmp_path: Path) -> None:
    assert video_frame_samples(5, 3) == [0, 2, 4]
    assert video_frame_samples(2, 4) == [0, 0, 1, 1]
    videos = [parse_video_name("P03_cam01_P03_juice"), parse_video_name("P16_cam01_P16_tea")]
    sources = {videos[0].name: BlankSource(2000), videos[1].name: BlankSource(100)}
    options = _options(tmp_path) | {"num_frames": 16}
    dataset = BreakfastActivityClips(videos, sources, frames_per_video=256, **options)
    assert len(dataset) == 32 and dataset.videos == [list(range(16)), list(range(16, 32))]
    frames = [f for i in range(16) for f in dataset.frame_indices(i)]
    assert len(frames) == 256 and frames[0] == 0 and frames[-1] == 1999
    assert frames == sorted(frames)
    items = [dataset[i] for i in range(16)]
    assert [item["is_last"] for item in items] == [False] * 15 + [True]
    assert {item["label"] for item in items} == {ACTIVITIES.index("juice")}
    assert [item["clip_index"] for item in items] == list(range(16))
    assert dataset[16]["label"] == ACTIVITIES.index("tea") and dataset[16]["is_first"]
    with pytest.raises(ValueError, match="data.frames_per_video"):
        BreakfastActivityClips(videos, sources, frames_per_video=250, **options)


# ---------------------------------------------------------------------------------------------
# metric


def test_map_on_a_hand_made_case() -> None:
    metric = BreakfastMetrics(num_classes=4)
    scores = torch.tensor(
        [
            [0.7, 0.2, 0.1, 0.0],  # class 0
            [0.6, 0.3, 0.1, 0.0],  # class 1
            [0.1, 0.8, 0.1, 0.0],  # class 1
            [0.3, 0.1, 0.6, 0.0],  # class 0
            [0.2, 0.2, 0.6, 0.0],  # padding row
        ]
    )
    metric.update(scores, torch.tensor([0, 1, 1, 0, IGNORE_LABEL]))
    result = metric.compute()
    # class 0: ranking 0.7(+) 0.6(-) 0.3(+) 0.1(-): AP = (1/1 + 2/3) / 2 = 5/6
    # class 1: ranking 0.8(+) 0.3(+) 0.2(-) 0.1(-): AP = 1
    # classes 2 and 3 have no positives: left out of the mean
    assert float(result["map"]) == pytest.approx((5 / 6 + 1) / 2)
    assert float(result["top1"]) == pytest.approx(2 / 4)  # rows 0 and 2
    assert int(result["classes_with_positives"]) == 2
    assert torch.isnan(result["per_class_ap"][2:]).all()
    logits = BreakfastMetrics(num_classes=4, from_logits=True)
    logits.update(torch.log(scores[:4] + 1e-6), torch.tensor([0, 1, 1, 0]))
    assert float(logits.compute()["map"]) == pytest.approx((5 / 6 + 1) / 2)


# ---------------------------------------------------------------------------------------------
# datamodule


@pytest.mark.parametrize("annotation_format", ["groundtruth", "segmentation"])
def test_subaction_batches_follow_the_contract(breakfast_world: Path, annotation_format: str):
    dm = _datamodule(breakfast_world, annotation_format=annotation_format, augment={})
    dm.setup()
    assert dm.num_classes == 9 and dm.class_names[0] == "SIL"
    assert {v.split("_")[0] for v in dm.datasets["val"].video_names} == {"P03"}
    assert {v.split("_")[0] for v in dm.datasets["train"].video_names} == {"P16", "P29", "P42"}
    assert dm.skipped == {
        "videos without a video file (skipped)": 0,
        "videos without a caption file (empty captions used)": 0,
    }
    previous = None
    for batch in dm.val_dataloader():
        assert batch["video"].shape == (2, 3, 4, 24, 24)
        assert batch["label"].dtype == torch.long and batch["is_first"].dtype == torch.bool
        assert all(len(c) == 4 for c in batch["captions"])
        valid = batch["valid"]
        assert (batch["label"][~valid] == IGNORE_LABEL).all()
        if previous is not None:
            for row in range(2):
                same = valid[row] and batch["video_id"][row] == previous["video_id"][row]
                if same:
                    assert batch["clip_index"][row] == previous["clip_index"][row] + 1
        previous = batch


def test_activity_batches_mark_the_last_clip(breakfast_world: Path) -> None:
    dm = _datamodule(breakfast_world, task="activity", activity_target="activity")
    dm.setup()
    assert dm.num_classes == 10
    batches = list(dm.val_dataloader())
    assert len(batches) == 4  # 2 videos, 2 rows, 16 frames / 4 = 4 clips each
    last = batches[-1]
    assert last["is_last"].all() and (last["clip_index"] == 3).all()
    assert not torch.cat([b["is_last"] for b in batches[:-1]]).any()
    assert sorted(last["label"].tolist()) == [
        ACTIVITIES.index("cereals"),
        ACTIVITIES.index("coffee"),
    ]
    assert all("takes" not in c for c in last["captions"][0])  # the last clip is SIL


def test_missing_video_is_skipped_and_counted(breakfast_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(breakfast_world, root)
    (root / VIDEO_DIR / "P16" / "cam01" / "P16_coffee.avi").unlink()
    dm = _datamodule(root)
    dm.setup()
    assert dm.skipped["videos without a video file (skipped)"] == 1
    assert "P16_cam01_P16_coffee" not in dm.datasets["train"].video_names


def test_unknown_label_in_groundtruth_names_file_and_line(breakfast_world: Path, tmp_path: Path):
    root = tmp_path / "world"
    shutil.copytree(breakfast_world, root)
    path = root / GROUNDTRUTH_DIR / "P29_cam01_P29_cereals.txt"
    lines = path.read_text().splitlines()
    lines[4] = "fry_egg"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"P29_cam01_P29_cereals\.txt:5: expected a sub"):
        _datamodule(root).setup()


def test_split_by_subject_without_bundles(breakfast_world: Path) -> None:
    dm = _datamodule(breakfast_world, split=3, train_bundle=None, test_bundle=None)
    dm.setup()
    assert {v.split("_")[0] for v in dm.datasets["val"].video_names} == {"P29"}
    assert len(dm.datasets["train"].video_names) == 6


def test_groundtruth_files_without_suffix_are_read(breakfast_world: Path, tmp_path: Path):
    root = tmp_path / "world"
    shutil.copytree(breakfast_world, root)
    files = sorted((root / GROUNDTRUTH_DIR).glob("*.txt"))
    for path in files[::2]:  # a mixed copy: every other file without .txt
        path.rename(path.with_suffix(""))
    renamed, plain = _datamodule(root), _datamodule(breakfast_world)
    renamed.setup()
    plain.setup()
    for split in ("train", "val"):  # the same segments of the same videos, none skipped
        found = [(a.video.name, s) for a, s in renamed.datasets[split].items]
        assert found == [(a.video.name, s) for a, s in plain.datasets[split].items] and found


def test_no_video_found_at_all_is_an_error(breakfast_world: Path) -> None:
    dm = _datamodule(breakfast_world, video_pattern="{subject}/{activity}.avi")
    with pytest.raises(DataFormatError, match=r"expected video file for the annotated videos"):
        dm.setup()


def test_hydra_configs_instantiate(tmp_path: Path) -> None:
    real = instantiate(compose_config("train", ["data=breakfast", "data.split=3"]).data)
    assert real.options.train_bundle == "splits/train.split3.bundle"
    assert (real.options.task, real.options.frames_per_video, real.options.train_short_side) == (
        "subaction",
        256,
        (256, 256),
    )
    overrides = [
        "data=synthetic_breakfast",
        f"data.root={tmp_path / 'world'}",
        "data.task=activity",
    ]
    overrides += ["data.synthetic.activities=[tea,milk]", "data.synthetic.frame_size=48"]
    overrides += ["data.crop_size=32", "data.train_short_side=[32,36]", "data.eval_short_side=32"]
    dm = instantiate(compose_config("train", overrides).data)
    dm.prepare_data()
    dm.setup()
    batches = list(dm.val_dataloader())
    assert len(batches) == 8  # 32 frames per video / 4 = 8 clips, both test videos side by side
    for batch in batches:  # eval_batch_size 4: rows 2 and 3 are padding
        assert batch["valid"].tolist() == [True, True, False, False]
    assert batches[-1]["is_last"][:2].all() and batches[0]["is_first"][:2].all()
    labels = {ACTIVITIES.index("tea"), ACTIVITIES.index("milk")}
    assert set(batches[0]["label"][:2].tolist()) == labels


def test_long_term_task_targets_every_sub_action_of_the_video(breakfast_world: Path) -> None:
    """Table 12: task B outputs all action categories of the video (multi-label over 48, mAP)."""
    dm = _datamodule(breakfast_world, task="activity")  # activity_target=actions, the default
    dm.setup()
    assert dm.num_classes == len(dm.class_names) == 9
    assert task_kwargs(dm)["outputs"] == {"actions": 9}
    classes = {name: i for i, name in enumerate(dm.class_names)}
    for batch in dm.val_dataloader():
        assert batch["actions"].shape == (2, 9) and batch["actions"].dtype == torch.float32
        for row, name in enumerate(batch["video_name"]):
            segments = read_groundtruth(breakfast_world / GROUNDTRUTH_DIR / f"{name}.txt", classes)
            present = batch["actions"][row].nonzero().flatten().tolist()
            assert present == sorted({s.label for s in segments}) and len(present) > 1
    metric = BreakfastMetrics(num_classes=3, multilabel=True)
    metric.update(
        torch.tensor([[0.9, 0.8, 0.1], [0.7, 0.2, 0.6]]), torch.tensor([[1, 0, 0], [1, 0, 1]])
    )
    result = metric.compute()
    # class 0: AP 1; class 1: no positive (left out); class 2: ranked 0.6(+) 0.1(-): AP 1
    assert float(result["map"]) == pytest.approx(1.0)
    assert int(result["classes_with_positives"]) == 2 and float(result["top1"]) == 1.0
    cfg = compose_config("train", ["experiment=demo_breakfast"])
    module = ClassificationModule(
        backbone=cfg.model.backbone, head=cfg.model.head, memory=cfg.memory, outputs={"actions": 9}
    )
    batch = next(iter(dm.val_dataloader()))
    logits = torch.zeros(2, 9)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["actions"])
    torch.testing.assert_close(module._loss("actions", logits, batch), expected)
    assert module.metrics["val"].multilabel

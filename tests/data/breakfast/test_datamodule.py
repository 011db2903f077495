"""The Breakfast datamodule on a synthetic world: both tasks, skips, errors, the Hydra configs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from helpers.data import stream_options
from tinymem.config import compose_config
from tinymem.data.breakfast.datamodule import BreakfastDataModule
from tinymem.data.breakfast.formats import ACTIVITIES, read_groundtruth
from tinymem.data.breakfast.synthetic import (
    GROUNDTRUTH_DIR,
    SEGMENTATION_DIR,
    VIDEO_DIR,
    VIDEO_PATTERN,
)
from tinymem.data.clip_dataset import IGNORE_LABEL
from tinymem.errors import DataFormatError
from tinymem.lit.classification import ClassificationModule
from tinymem.metrics.breakfast import BreakfastMetrics
from tinymem.pipeline import task_kwargs


def _datamodule(root: Path, task: str = "subaction", **kwargs) -> BreakfastDataModule:
    options = stream_options(
        root,
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
        frames_per_video=16,
        crop_size=24,
        train_short_side=[24, 28],
        eval_short_side=24,
    )
    options.update(kwargs)
    return BreakfastDataModule(**options)


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

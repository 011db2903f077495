"""The datamodule on the synthetic world: streaming order and bad input through the dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tinymem.data.ava.datamodule import AvaDataModule
from tinymem.data.errors import DataFormatError


def _datamodule(root: Path, batch_size: int = 3, **kwargs) -> AvaDataModule:
    return AvaDataModule(
        root=str(root),
        train_csv="annotations/train.csv",
        val_csv="annotations/val.csv",
        label_map="annotations/action_list.pbtxt",
        val_proposals="annotations/val_proposals.csv",
        val_excluded="annotations/val_excluded_timestamps.csv",
        video_dir="videos",
        caption_dir="captions",
        num_frames=4,
        sample_rate=2,
        crop_size=64,
        video_start_sec=900,
        batch_size=batch_size,
        eval_batch_size=2,
        **kwargs,
    )


def test_streaming_batches_continue_each_video(tiny_world: Path) -> None:
    dm = _datamodule(tiny_world)
    dm.setup()
    loader = dm.train_dataloader()
    loader.batch_sampler.set_epoch(0)
    previous = None
    seen = set()
    for batch in loader:
        assert batch["video"].shape == (3, 3, 4, 64, 64)
        for row in range(3):
            if not batch["valid"][row]:
                continue
            key = (batch["video_name"][row], int(batch["clip_index"][row]))
            assert key not in seen
            seen.add(key)
            if previous is not None and previous["valid"][row]:
                same = batch["video_name"][row] == previous["video_name"][row]
                # the row continues its video one keyframe later, or flags a new video
                if same:
                    assert batch["clip_index"][row] == previous["clip_index"][row] + 1
                    assert not batch["is_first"][row]
                else:
                    assert batch["is_first"][row]
            elif previous is None:
                assert batch["is_first"][row]
        previous = batch
    assert len(seen) == len(dm.datasets["train"])


def test_eval_uses_proposals_and_train_uses_groundtruth(tiny_world: Path) -> None:
    dm = _datamodule(tiny_world)
    dm.setup()
    train_item = dm.datasets["train"][0]
    val_item = dm.datasets["val"][0]
    assert train_item["labels"].sum() >= 1  # groundtruth boxes carry labels
    assert (val_item["box_scores"] >= 0.9).all() and (val_item["box_scores"] < 1).any()
    assert len(train_item["captions"]) == 4
    assert dm.skipped["videos without a caption file (empty captions used)"] == 0


def test_video_without_a_file_is_skipped_and_counted(tiny_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root)
    victim = sorted((root / "videos").glob("syn_train_*.mp4"))[0]
    victim.unlink()
    full = _datamodule(tiny_world)
    full.setup()
    dm = _datamodule(root)
    dm.setup()
    assert victim.stem not in dm.datasets["train"].video_names
    lost = len(full.datasets["train"]) - len(dm.datasets["train"])
    assert lost > 0 and dm.skipped["keyframes of videos without frames (skipped)"] == lost
    for video in (root / "videos").glob("syn_train_*.mp4"):
        video.unlink()  # no training video at all is an error, not an empty epoch
    with pytest.raises(DataFormatError, match="expected frames for the train videos"):
        _datamodule(root).setup()


def test_corrupt_video_names_the_file(tiny_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root)
    victim = sorted((root / "videos").glob("syn_train_*.mp4"))[0]
    victim.write_bytes(victim.read_bytes()[:300])
    dm = _datamodule(root)
    dm.setup()
    with pytest.raises(DataFormatError, match=str(victim.name)):
        dm.datasets["train"][dm.datasets["train"].videos[0][0]]


def test_bad_csv_row_names_file_and_line(tiny_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root)
    csv_path = root / "annotations" / "train.csv"
    lines = csv_path.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0]  # drop a column on line 3
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"train.csv:3: expected 8 columns"):
        _datamodule(root).setup()
    lines[2] = "syn_train_000,0902,0.1,0.1,1.5,0.9,1,0"  # x2 outside [0, 1]
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"train.csv:3:.*x2"):
        _datamodule(root).setup()


def test_missing_captions_fall_back_and_are_counted(tiny_world: Path, tmp_path: Path, caplog):
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root)
    victim = sorted((root / "captions").glob("syn_train_*.jsonl"))[0]
    victim.unlink()
    dm = _datamodule(root)
    with caplog.at_level("WARNING"):
        dm.setup()
    assert dm.skipped["videos without a caption file (empty captions used)"] == 1
    assert victim.stem in caplog.text
    dataset = dm.datasets["train"]
    item = dataset[dataset.videos[dataset.video_index[victim.stem]][0]]
    assert item["captions"] == [""] * 4
    assert torch.is_tensor(item["video"])


def test_caption_augmentation_applies_to_training_only(tiny_world: Path) -> None:
    plain = _datamodule(tiny_world)
    augmented = _datamodule(tiny_world, caption_augment={"p": 1.0, "max_edits": 2})
    plain.setup()
    augmented.setup()
    torch.manual_seed(0)
    for split in ("train", "val"):
        stored = plain.datasets[split][0]["captions"]
        captions = augmented.datasets[split][0]["captions"]
        changed = [c != s for c, s in zip(captions, stored, strict=True)]
        assert any(changed) if split == "train" else not any(changed)

"""The AVA datamodule on the synthetic world: streaming order, bad input through the dataset,
uint8 batches finished after transfer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from helpers.data import ava_datamodule
from tinymem.data.ava.datamodule import AvaDataModule
from tinymem.errors import DataFormatError


def test_streaming_batches_continue_each_video(tiny_world: Path) -> None:
    dm = ava_datamodule(tiny_world)
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
    dm = ava_datamodule(tiny_world)
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
    full = ava_datamodule(tiny_world)
    full.setup()
    dm = ava_datamodule(root)
    dm.setup()
    assert victim.stem not in dm.datasets["train"].video_names
    lost = len(full.datasets["train"]) - len(dm.datasets["train"])
    assert lost > 0 and dm.skipped["keyframes of videos without frames (skipped)"] == lost
    for video in (root / "videos").glob("syn_train_*.mp4"):
        video.unlink()  # no training video at all is an error, not an empty epoch
    with pytest.raises(DataFormatError, match="expected frames for the train videos"):
        ava_datamodule(root).setup()


def test_corrupt_video_names_the_file(tiny_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root)
    victim = sorted((root / "videos").glob("syn_train_*.mp4"))[0]
    victim.write_bytes(victim.read_bytes()[:300])
    dm = ava_datamodule(root)
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
        ava_datamodule(root).setup()
    lines[2] = "syn_train_000,0902,0.1,0.1,1.5,0.9,1,0"  # x2 outside [0, 1]
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"train.csv:3:.*x2"):
        ava_datamodule(root).setup()


def test_missing_captions_fall_back_and_are_counted(tiny_world: Path, tmp_path: Path, caplog):
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root)
    victim = sorted((root / "captions").glob("syn_train_*.jsonl"))[0]
    victim.unlink()
    dm = ava_datamodule(root)
    with caplog.at_level("WARNING"):
        dm.setup()
    assert dm.skipped["videos without a caption file (empty captions used)"] == 1
    assert victim.stem in caplog.text
    dataset = dm.datasets["train"]
    item = dataset[dataset.videos[dataset.video_index[victim.stem]][0]]
    assert item["captions"] == [""] * 4
    assert torch.is_tensor(item["video"])


def test_caption_augmentation_applies_to_training_only(tiny_world: Path) -> None:
    plain = ava_datamodule(tiny_world)
    augmented = ava_datamodule(tiny_world, caption_augment={"p": 1.0, "max_edits": 2})
    plain.setup()
    augmented.setup()
    torch.manual_seed(0)
    for split in ("train", "val"):
        stored = plain.datasets[split][0]["captions"]
        captions = augmented.datasets[split][0]["captions"]
        changed = [c != s for c, s in zip(captions, stored, strict=True)]
        assert any(changed) if split == "train" else not any(changed)


def test_datamodule_finishes_uint8_batches_after_transfer(tiny_world: Path) -> None:
    def datamodule(device_transform: bool) -> AvaDataModule:
        dm = ava_datamodule(tiny_world, crop_size=48, device_transform=device_transform)
        dm.setup()
        return dm

    old, new = datamodule(False), datamodule(True)
    torch.manual_seed(0)
    expected = list(old.train_dataloader())
    torch.manual_seed(0)
    for want, got in zip(expected, new.train_dataloader(), strict=True):
        assert got["video"].dtype == torch.uint8  # [B, T, H, W, 3] shipped
        got = new.on_after_batch_transfer(got, 0)
        assert "color_jitter" not in got
        assert torch.equal(got["video"], want["video"])  # the demo's recipe: bit for bit

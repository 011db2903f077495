"""The Epic-Kitchens-100 datamodule on a synthetic world: batches, sources, captions, skips."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from helpers.data import TINY_EPIC, stream_options
from tinymem.config import compose_config
from tinymem.data.clip_dataset import IGNORE_LABEL
from tinymem.data.clip_transforms import ClipAugment
from tinymem.data.epic_kitchens.datamodule import EpicKitchensDataModule
from tinymem.data.epic_kitchens.formats import read_epic_annotations
from tinymem.data.epic_kitchens.synthetic import (
    ANNOTATION_DIR,
    FRAME_PATTERN,
    MEDIA_DIR,
    VIDEO_PATTERN,
    SyntheticEpicSpec,
    ensure_synthetic_epic,
)
from tinymem.errors import DataFormatError


@pytest.fixture(scope="module")
def epic_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_synthetic_epic(
        tmp_path_factory.mktemp("epic") / "world", SyntheticEpicSpec(**TINY_EPIC)
    )


def _datamodule(root: Path, source: str = "frames", **kwargs) -> EpicKitchensDataModule:
    options = stream_options(
        root,
        train_csv=f"{ANNOTATION_DIR}/EPIC_100_train.csv",
        val_csv=f"{ANNOTATION_DIR}/EPIC_100_validation.csv",
        video_info_csv=f"{ANNOTATION_DIR}/EPIC_100_video_info.csv",
        source=source,
        media_dir=MEDIA_DIR,
        frame_pattern=FRAME_PATTERN,
        first_frame_number=1,
        video_pattern=VIDEO_PATTERN,
        crop_size=32,
        train_short_side=[32, 40],
        eval_short_side=32,
    )
    options.update(kwargs)
    return EpicKitchensDataModule(**options)


@pytest.mark.parametrize("source", ["frames", "video"])
def test_datamodule_batches_follow_the_contract(epic_world: Path, source: str) -> None:
    dm = _datamodule(epic_world, source=source, augment={}, caption_augment={"p": 0.0})
    dm.setup()
    assert dm.skipped == {
        f"segments of videos without a {'frame folder' if source == 'frames' else 'video file'}"
        " (skipped)": 0,
        "videos without a caption file (empty captions used)": 0,
    }
    batches = list(dm.train_dataloader())
    assert len(batches) == len(dm.train_dataloader().batch_sampler)
    for batch in batches:
        assert batch["video"].shape == (2, 3, 4, 32, 32) and batch["video"].dtype == torch.float32
        for key in ("video_id", "clip_index", "verb", "noun"):
            assert batch[key].dtype == torch.long and batch[key].shape == (2,)
        for key in ("is_first", "valid"):
            assert batch[key].dtype == torch.bool and batch[key].shape == (2,)
        assert len(batch["video_name"]) == 2 and len(batch["narration_id"]) == 2
        assert all(len(captions) == 4 for captions in batch["captions"])
        pad = ~batch["valid"]
        assert (batch["verb"][pad] == IGNORE_LABEL).all() and (batch["video_id"][pad] == -1).all()
        assert ((batch["verb"][~pad] >= 0) & (batch["verb"][~pad] <= 1)).all()
        assert torch.equal(batch["is_first"][~pad], batch["clip_index"][~pad] == 0)
    total = sum(int(b["valid"].sum()) for b in batches)
    assert (
        total
        == len(dm.datasets["train"])
        == len(read_epic_annotations(epic_world / ANNOTATION_DIR / "EPIC_100_train.csv"))
    )


def test_frames_and_video_sources_agree(epic_world: Path) -> None:
    frames = _datamodule(epic_world, source="frames")
    video = _datamodule(epic_world, source="video")
    frames.setup()
    video.setup()
    a, b = frames.datasets["val"][3], video.datasets["val"][3]
    assert a["narration_id"] == b["narration_id"] and a["captions"] == b["captions"]
    assert (a["video"] - b["video"]).abs().mean() < 0.2  # JPEG vs lossless H.264, normalised


def test_cue_captions_name_the_noun_of_later_put_segments(epic_world: Path) -> None:
    dm = _datamodule(epic_world)
    dm.setup()
    dataset = dm.datasets["train"]
    for indices in dataset.videos:
        cue_noun = None
        for index in indices:
            item = dataset[index]
            if item["verb"] == 0:  # take: the caption names the colour of this noun
                cue_noun = item["noun"]
                assert any("takes" in c for c in item["captions"])
            else:  # put: same noun as the last take, not said by the segment's own frames
                assert item["noun"] == cue_noun
                assert "takes" not in item["captions"][2]  # the clip's centre frame


def test_missing_frames_are_skipped_and_counted(epic_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(epic_world, root)
    shutil.rmtree(root / MEDIA_DIR / "P02" / "rgb_frames" / "P02_01")
    dm = _datamodule(root)
    dm.setup()
    skipped = dm.skipped["segments of videos without a frame folder (skipped)"]
    rows = read_epic_annotations(root / ANNOTATION_DIR / "EPIC_100_train.csv")
    assert skipped == sum(s.video_id == "P02_01" for s in rows) > 0
    assert "P02_01" not in dm.datasets["train"].video_names


def test_video_missing_from_video_info_names_the_row(epic_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(epic_world, root)
    info = root / ANNOTATION_DIR / "EPIC_100_video_info.csv"
    info.write_text(
        "\n".join(line for line in info.read_text().splitlines() if "P01_01," not in line)
    )
    with pytest.raises(DataFormatError, match=r"EPIC_100_train\.csv:2: expected video 'P01_01'"):
        _datamodule(root).setup()


def test_hydra_configs_instantiate(tmp_path: Path) -> None:
    real = instantiate(compose_config("train", ["data=epic_kitchens"]).data)
    options = real.options
    assert (options.num_verbs, options.num_nouns, options.num_frames) == (97, 300, 16)
    assert options.label_smoothing == 0.01 and options.source == "frames"
    assert options.augment == ClipAugment() and options.caption_augment.p == 0.3
    tiny = dict(num_train_videos=2, num_val_videos=1, frame_size=32, write_videos=False)
    overrides = ["data=synthetic_epic", f"data.root={tmp_path / 'world'}", "data.crop_size=32"]
    overrides += ["data.train_short_side=[32,36]", "data.eval_short_side=32"]
    overrides += [f"data.synthetic.{key}={value}" for key, value in tiny.items()]
    dm = instantiate(compose_config("train", overrides).data)
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    assert batch["video"].shape == (4, 3, 4, 32, 32) and int(batch["valid"].sum()) == 1

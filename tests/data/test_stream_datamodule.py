"""The streaming DataModule base: options checked by key, the resume position, skip reporting."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from torch.utils.data import Dataset

from helpers.data import stream_options
from tinymem.data.stream_datamodule import NO_CAPTIONS, StreamingDataModule, StreamOptions
from tinymem.memory.captions import CaptionStore

VIDEOS = {"a": 3, "b": 5, "c": 2, "d": 4}  # video name -> clips


class NumberedClips(Dataset):
    """Items are their own dataset index; videos hold consecutive indices in time order."""

    def __init__(self, lengths: dict[str, int]) -> None:
        self.video_names = list(lengths)
        self.videos, start = [], 0
        for length in lengths.values():
            self.videos.append(list(range(start, start + length)))
            start += length

    def __len__(self) -> int:
        return sum(len(v) for v in self.videos)

    def __getitem__(self, index: int) -> int:
        return index  # PAD_INDEX (-1) on padding rows


@dataclasses.dataclass(frozen=True, kw_only=True)
class NumberedOptions(StreamOptions):
    """One extra required key, to check that subclasses add their own."""

    clip_seconds: float


class NumberedDataModule(StreamingDataModule):
    """The smallest streaming datamodule: the same four videos in both splits."""

    options_class = NumberedOptions
    collate = staticmethod(list)
    write_synthetic = staticmethod(lambda root, spec: NumberedDataModule.written.append(spec))
    written: list[Any] = []

    def setup(self, stage: str | None = None) -> None:
        """Both splits, then the skip report."""
        self.datasets = {"train": NumberedClips(VIDEOS), "val": NumberedClips(VIDEOS)}
        self.count("nothing (skipped)", 1)
        self.count("nothing (skipped)", 2)
        self.report()


def _datamodule(root: Path, **kwargs) -> NumberedDataModule:
    config = stream_options(root, crop_size=16, eval_batch_size=3, seed=3, clip_seconds=1.0)
    config.update(kwargs)
    dm = NumberedDataModule(**config)
    dm.setup()
    return dm


def test_options_name_an_unknown_or_a_missing_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.colour: not an option of NumberedOptions"):
        _datamodule(tmp_path, colour="red")
    with pytest.raises(ValueError, match=r"data\.clip_seconds: required by NumberedOptions"):
        NumberedDataModule(**stream_options(tmp_path, caption_dir="c", crop_size=16))
    with pytest.raises(ValueError, match=r"data\.caption_augment\.p"):
        _datamodule(tmp_path, caption_augment={"p": 2.0})
    dm = _datamodule(tmp_path, caption_augment={"p": 0.5})
    assert dm.options.root == tmp_path and dm.path("caption_dir") == tmp_path / "captions"
    assert dm.options.caption_augment.p == 0.5 and dm.options.persistent_workers


def test_training_loader_continues_from_the_resume_state_once(tmp_path: Path) -> None:
    full = list(_datamodule(tmp_path).train_dataloader())
    assert sorted(i for batch in full for i in batch if i >= 0) == list(range(sum(VIDEOS.values())))

    loader = _datamodule(tmp_path).train_dataloader()
    batches = iter(loader)
    consumed = [next(batches) for _ in range(2)]
    state = loader.batch_sampler.state_dict(len(consumed))

    resumed = _datamodule(tmp_path)
    resumed.resume_state = state
    assert list(resumed.val_dataloader())  # evaluation loaders leave the position pending
    assert list(resumed.train_dataloader()) == full[2:]
    assert resumed.resume_state is None
    assert list(resumed.train_dataloader()) == full  # used once: the next loader starts at 0


def test_report_counts_skips_and_videos_without_captions(tmp_path: Path) -> None:
    (tmp_path / "captions").mkdir()
    CaptionStore(tmp_path / "captions").path("b").write_text("")
    dm = _datamodule(tmp_path)
    assert dm.skipped == {"nothing (skipped)": 3, NO_CAPTIONS: 3}
    # counted once here, so the datasets' store (one per data worker) does not warn per video
    store = dm.caption_store()
    assert store.caption_dir == tmp_path / "captions" and not store.warn_missing


def test_prepare_data_writes_the_synthetic_world_only_when_set(tmp_path: Path) -> None:
    NumberedDataModule.written.clear()
    _datamodule(tmp_path).prepare_data()
    assert NumberedDataModule.written == []
    _datamodule(tmp_path, synthetic={"seed": 1}).prepare_data()
    assert NumberedDataModule.written == [{"seed": 1}]

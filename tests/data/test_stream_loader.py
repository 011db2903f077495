"""The data engine: workers own rows, resumed epochs, uint8 clips finished on the device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset, get_worker_info

from tinymem.data.ava.datamodule import AvaDataModule
from tinymem.data.ava.dataset import (
    VIDEO_MEAN,
    VIDEO_STD,
    AvaAugment,
    AvaKeyframeClips,
    collate_keyframes,
)
from tinymem.data.ava.formats import read_annotations, read_label_map
from tinymem.data.device_transform import finish_clips
from tinymem.data.frame_sources import JpegFolderSource, VideoFileSource
from tinymem.data.stream_loader import StreamingDataLoader
from tinymem.data.streaming import PAD_INDEX, StreamingBatchSampler
from tinymem.memory.captions import CaptionStore


def clips(world: Path, train: bool, device_transform: bool, **kwargs: Any) -> AvaKeyframeClips:
    """The tiny world's training keyframes as a dataset (stream decoding)."""
    class_ids = sorted(read_label_map(world / "annotations/action_list.pbtxt"))
    groundtruth, _ = read_annotations(world / "annotations/train.csv", set(class_ids))
    videos = {video for video, _ in groundtruth}
    sources = {v: VideoFileSource(world / "videos" / f"{v}.mp4") for v in videos}
    return AvaKeyframeClips(
        groundtruth,
        sources,
        CaptionStore(world / "captions"),
        class_ids,
        num_frames=4,
        sample_rate=2,
        crop_size=kwargs.pop("crop_size", 64),
        video_start_sec=900,
        train=train,
        device_transform=device_transform,
        **kwargs,
    )


class Tagged(Dataset):
    """Items with the worker that read them and how often their video's decoder opened."""

    def __init__(self, dataset: AvaKeyframeClips) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]
        info = get_worker_info()
        item["worker"] = -1 if info is None else info.id
        if index != PAD_INDEX:
            video = self.dataset.items[index][0]
            item["opened"] = self.dataset.sources[video].decoder.seeks
        return item


def rows(items: list[dict[str, Any]], pin_memory: bool = False) -> list[dict[str, Any]]:
    """Collate to the step's list of items (to look at each row)."""
    return items


def read_epoch(loader: StreamingDataLoader) -> list[list[dict[str, Any]]]:
    return [list(step) for step in loader]


@pytest.mark.parametrize("num_workers", [1, 2])
def test_workers_own_rows_keep_order_and_ranks_disjoint(tiny_world: Path, num_workers) -> None:
    batch_size, names = 3, {}
    for rank in (0, 1):
        steps = []
        for workers in (0, num_workers):
            dataset = Tagged(
                clips(tiny_world, train=False, device_transform=True)
            )  # fresh decoders
            sampler = StreamingBatchSampler(
                dataset.dataset.videos, batch_size, shuffle=True, seed=1, num_replicas=2, rank=rank
            )
            loader = StreamingDataLoader(dataset, sampler, rows, num_workers=workers)
            assert len(loader) == len(sampler)
            steps.append(read_epoch(loader))
        serial, parallel = steps
        assert len(serial) == len(parallel) == len(sampler)
        for one, other in zip(serial, parallel, strict=True):
            for row, (a, b) in enumerate(zip(one, other, strict=True)):
                assert a["video_name"] == b["video_name"] and a["clip_index"] == b["clip_index"]
                assert torch.equal(a["video"], b["video"])
                assert b["worker"] == row % num_workers  # a worker owns its rows
        opened = [item["opened"] for step in parallel for item in step if item["valid"]]
        assert set(opened) == {1}  # each video opened once: decoders kept across steps
        names[rank] = {item["video_name"] for step in parallel for item in step if item["valid"]}
    assert names[0] and names[1] and not names[0] & names[1]  # DDP ranks own disjoint videos


def test_a_resumed_epoch_continues_the_decoders_at_the_right_place(tiny_world: Path) -> None:
    dataset = Tagged(clips(tiny_world, train=False, device_transform=True))
    sampler = StreamingBatchSampler(dataset.dataset.videos, 2, shuffle=True, seed=3)
    whole = read_epoch(StreamingDataLoader(dataset, sampler, rows, num_workers=2))
    consumed = 3
    state = sampler.state_dict(consumed)
    dataset = Tagged(clips(tiny_world, train=False, device_transform=True))  # a new process
    resumed_sampler = StreamingBatchSampler(dataset.dataset.videos, 2, shuffle=True, seed=3)
    resumed_sampler.load_state_dict(state)
    loader = StreamingDataLoader(dataset, resumed_sampler, rows, num_workers=2)
    resumed = read_epoch(loader)
    assert len(resumed) == len(whole) - consumed
    for one, other in zip(whole[consumed:], resumed, strict=True):
        for a, b in zip(one, other, strict=True):
            assert (a["video_name"], a["clip_index"]) == (b["video_name"], b["clip_index"])
            assert torch.equal(a["video"], b["video"])  # the same frames after the resume
    opened = [item["opened"] for step in resumed for item in step if item["valid"]]
    assert set(opened) == {1}  # a video cut by the resume is opened (seeked) once, mid-way


def test_device_transform_equals_the_cpu_transform(tiny_world: Path) -> None:
    augment = AvaAugment(kind="ava", short_side=(40, 56))
    cpu = clips(tiny_world, train=True, device_transform=False, augment=augment, crop_size=32)
    device = clips(tiny_world, train=True, device_transform=True, augment=augment, crop_size=32)
    for index in range(6):
        torch.manual_seed(index)
        expected = cpu[index]
        after_cpu = torch.get_rng_state()
        torch.manual_seed(index)
        item = device[index]
        assert torch.equal(torch.get_rng_state(), after_cpu)  # the same random draws
        assert item["video"].dtype == torch.uint8 and item["video"].shape == (4, 32, 32, 3)
        assert not torch.isnan(item["color_jitter"]).any()
        batch = collate_keyframes([item, device._padding_item()])
        video = finish_clips(
            batch["video"], batch["color_jitter"], batch["valid"], VIDEO_MEAN, VIDEO_STD
        )
        assert torch.equal(video[0], expected["video"])  # bit for bit
        assert torch.equal(video[1], torch.zeros_like(video[1]))  # padding row
        assert torch.equal(item["boxes"], expected["boxes"])


def test_datamodule_finishes_uint8_batches_after_transfer(tiny_world: Path) -> None:
    def datamodule(device_transform: bool) -> AvaDataModule:
        dm = AvaDataModule(
            root=str(tiny_world),
            train_csv="annotations/train.csv",
            val_csv="annotations/val.csv",
            label_map="annotations/action_list.pbtxt",
            val_proposals="annotations/val_proposals.csv",
            val_excluded="annotations/val_excluded_timestamps.csv",
            video_dir="videos",
            caption_dir="captions",
            num_frames=4,
            sample_rate=2,
            crop_size=48,
            video_start_sec=900,
            batch_size=3,
            eval_batch_size=2,
            device_transform=device_transform,
        )
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


def test_jpeg_frames_are_decoded_at_reduced_size_when_the_target_allows(tmp_path: Path) -> None:
    generator = np.random.default_rng(0)
    folder = tmp_path / "v"
    folder.mkdir()
    for number in (1, 2):
        image = generator.integers(0, 256, (96, 160, 3), dtype=np.uint8)
        Image.fromarray(image).save(folder / f"v_{number:06d}.jpg", quality=90)
    source = JpegFolderSource(tmp_path, "v/v_{frame:06d}.jpg")
    full = source.read([0, 1])
    assert full.shape == (2, 3, 96, 160)
    assert torch.equal(source.read([0, 1], short_side=64), full)  # 96 < 2 x 64: full size
    half = source.read([1, 0], short_side=48)  # 96 >= 2 x 48: decoded at 1/2
    assert half.shape == (2, 3, 48, 80)
    with Image.open(folder / "v_000002.jpg") as image:
        image.draft("RGB", (80, 48))
        expected = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(half[0], expected)
    assert source.read([0], short_side=20).shape == (1, 3, 24, 40)  # 1/4, not below 20

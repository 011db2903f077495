"""The streaming data loader: workers own rows in order, ranks disjoint, resumed epochs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import Dataset, get_worker_info

from helpers.data import ava_clips
from tinymem.data.ava.dataset import AvaKeyframeClips
from tinymem.data.stream_loader import StreamingDataLoader
from tinymem.data.streaming import PAD_INDEX, StreamingBatchSampler


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
                ava_clips(tiny_world, train=False, device_transform=True)
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
    dataset = Tagged(ava_clips(tiny_world, train=False, device_transform=True))
    sampler = StreamingBatchSampler(dataset.dataset.videos, 2, shuffle=True, seed=3)
    whole = read_epoch(StreamingDataLoader(dataset, sampler, rows, num_workers=2))
    consumed = 3
    state = sampler.state_dict(consumed)
    dataset = Tagged(ava_clips(tiny_world, train=False, device_transform=True))  # a new process
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

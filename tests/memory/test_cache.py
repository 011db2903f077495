"""FIFO caches: capacity, strided reads, masked missing entries, the rolling mask per row."""

from __future__ import annotations

import pytest
import torch

from tinymem.memory.cache import FifoCache


def _step(cache: FifoCache, value: float, video_ids, is_first) -> None:
    cache.begin_step(torch.tensor(video_ids), torch.tensor(is_first))
    batch = len(video_ids)
    cache.write(torch.full((batch, 2, 3), value), torch.ones(batch, 2, dtype=torch.bool))


def test_fifo_keeps_at_most_capacity_entries() -> None:
    cache = FifoCache(capacity=3, num_tokens=2, dim=3)
    for step in range(7):
        _step(cache, float(step), [0], [step == 0])
        assert len(cache) == min(step + 1, 3)
    assert [float(t[0, 0, 0]) for t, _ in cache.entries] == [4.0, 5.0, 6.0]  # oldest dropped


def test_read_samples_entries_with_stride() -> None:
    cache = FifoCache(capacity=6, num_tokens=2, dim=3)  # l=3, s=2
    for step in range(10):
        _step(cache, float(step), [0], [step == 0])
    cache.begin_step(torch.tensor([0]), torch.tensor([False]))  # the step t=10
    read = cache.read(length=3, stride=2)
    assert read.tokens.shape == (1, 3, 2, 3)
    assert read.tokens[0, :, 0, 0].tolist() == [8.0, 6.0, 4.0]  # clips t-2, t-4, t-6
    assert read.distance.tolist() == [2, 4, 6]
    assert read.mask.all()


def test_missing_entries_are_masked_zeros() -> None:
    cache = FifoCache(capacity=4, num_tokens=2, dim=3)
    _step(cache, 5.0, [0], [True])
    cache.begin_step(torch.tensor([0]), torch.tensor([False]))
    read = cache.read(length=2, stride=2)
    assert not read.mask.any()  # t-2 and t-4 do not exist yet
    assert (read.tokens == 0).all()


def test_rolling_mask_per_row() -> None:
    cache = FifoCache(capacity=2, num_tokens=2, dim=3)
    _step(cache, 1.0, [0, 1], [True, True])
    _step(cache, 2.0, [0, 1], [False, False])
    # row 0 continues video 0, row 1 starts video 7 (flagged), so only row 0 keeps memory
    cache.begin_step(torch.tensor([0, 7]), torch.tensor([False, True]))
    read = cache.read(length=2, stride=1)
    assert read.mask[0].all()
    assert not read.mask[1].any()
    # a changed video id masks even without the flag
    cache.write(torch.zeros(2, 2, 3), torch.ones(2, 2, dtype=torch.bool))
    cache.begin_step(torch.tensor([3, 7]), torch.tensor([False, False]))
    read = cache.read(length=2, stride=1)
    assert not read.mask[0].any()
    assert read.mask[1, 0].all() and not read.mask[1, 1].any()


def test_write_rejects_wrong_entry_shape() -> None:
    cache = FifoCache(capacity=2, num_tokens=2, dim=3)
    cache.begin_step(torch.tensor([0]), torch.tensor([True]))
    with pytest.raises(ValueError, match="cache expects"):
        cache.write(torch.zeros(1, 4, 3), torch.ones(1, 4, dtype=torch.bool))

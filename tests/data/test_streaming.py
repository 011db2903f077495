"""The streaming batch sampler keeps every row on one video at a time, in order, DDP-aware."""

import pytest
import torch

from tinymem.data.streaming import PAD_INDEX, StreamingBatchSampler, stream_schedule

LENGTHS = [5, 1, 3, 7, 2, 4, 6, 2, 3]


def make_videos(lengths: list[int]) -> list[list[int]]:
    """Consecutive dataset indices per video: video v holds a contiguous block."""
    videos, start = [], 0
    for length in lengths:
        videos.append(list(range(start, start + length)))
        start += length
    return videos


def video_of(videos: list[list[int]]) -> dict[int, tuple[int, int]]:
    """Dataset index -> (video, position in video)."""
    return {index: (v, p) for v, indices in enumerate(videos) for p, index in enumerate(indices)}


def rows_of(batches: list[list[int]]) -> list[list[int]]:
    """Transpose batches (steps x rows) into rows (rows x steps)."""
    return [list(row) for row in zip(*batches, strict=True)]


def all_batches(videos, batch_size, num_replicas, epoch=0, shuffle=False, seed=0):
    """Batches per rank for one epoch."""
    per_rank = []
    for rank in range(num_replicas):
        sampler = StreamingBatchSampler(
            videos, batch_size, shuffle=shuffle, seed=seed, num_replicas=num_replicas, rank=rank
        )
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert all(len(batch) == batch_size for batch in batches)
        per_rank.append(batches)
    return per_rank


@pytest.mark.parametrize(("batch_size", "num_replicas"), [(1, 1), (3, 1), (2, 2), (4, 2), (8, 1)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_index_once_and_rows_follow_videos(batch_size, num_replicas, shuffle):
    videos = make_videos(LENGTHS)
    where = video_of(videos)
    per_rank = all_batches(videos, batch_size, num_replicas, epoch=3, shuffle=shuffle)
    seen = [i for batches in per_rank for batch in batches for i in batch if i != PAD_INDEX]
    assert sorted(seen) == list(range(sum(LENGTHS)))
    for batches in per_rank:
        for row in rows_of(batches):
            real = [i for i in row if i != PAD_INDEX]
            # padding only at the end of a row: no gap inside or between videos
            assert row[: len(real)] == real
            assert all(i == PAD_INDEX for i in row[len(real) :])
            for previous, current in zip(real, real[1:], strict=False):
                (video_a, pos_a), (video_b, pos_b) = where[previous], where[current]
                if video_a == video_b:
                    assert pos_b == pos_a + 1
                else:  # a new video starts only after the previous one ended, at its first clip
                    assert pos_a == len(videos[video_a]) - 1
                    assert pos_b == 0


def test_ranks_hold_disjoint_whole_videos_and_equal_lengths():
    videos = make_videos(LENGTHS)
    where = video_of(videos)
    per_rank = all_batches(videos, batch_size=2, num_replicas=2, shuffle=True, epoch=1)
    assert len(per_rank[0]) == len(per_rank[1])
    owners: dict[int, set[tuple[int, int]]] = {}
    for rank, batches in enumerate(per_rank):
        for row_index, row in enumerate(rows_of(batches)):
            for i in row:
                if i != PAD_INDEX:
                    owners.setdefault(where[i][0], set()).add((rank, row_index))
    assert sorted(owners) == list(range(len(videos)))
    assert all(len(slots) == 1 for slots in owners.values())


def test_slot_mapping_follows_global_streams():
    # 4 equal videos, 2 ranks x 2 rows: global stream g = b * 2 + rank takes video g first
    videos = make_videos([2, 2, 2, 2])
    per_rank = all_batches(videos, batch_size=2, num_replicas=2)
    first = {(rank, b): per_rank[rank][0][b] for rank in range(2) for b in range(2)}
    assert first == {(0, 0): 0, (1, 0): 2, (0, 1): 4, (1, 1): 6}


def test_schedule_matches_hand_computed_example():
    # streams take the next video when theirs ends; ties in stream order
    streams, num_steps = stream_schedule([3, 1, 2, 2], num_streams=2)
    assert streams == [[0, 3], [1, 2]]
    assert num_steps == 5
    videos = make_videos([3, 1, 2, 2])
    batches = list(StreamingBatchSampler(videos, 2, shuffle=False, num_replicas=1, rank=0))
    assert batches == [[0, 3], [1, 4], [2, 5], [6, PAD_INDEX], [7, PAD_INDEX]]


def test_shuffle_changes_video_order_between_epochs_not_clip_order():
    videos = make_videos([2] * 12)
    orders = []
    for epoch in range(2):
        (batches,) = all_batches(videos, batch_size=3, num_replicas=1, epoch=epoch, shuffle=True)
        orders.append(batches)
        for row in rows_of(batches):
            real = [i for i in row if i != PAD_INDEX]
            assert all(a + 1 == b for a, b in zip(real[::2], real[1::2], strict=True))
    assert orders[0] != orders[1]
    again = all_batches(videos, batch_size=3, num_replicas=1, epoch=1, shuffle=True)[0]
    assert again == orders[1]  # same (seed, epoch) -> same order


def test_no_shuffle_is_deterministic_and_epoch_independent():
    videos = make_videos(LENGTHS)
    first = all_batches(videos, batch_size=3, num_replicas=2, epoch=0)
    assert all_batches(videos, batch_size=3, num_replicas=2, epoch=5) == first
    assert first[0][0] == [0, 6, 16]  # rank 0 rows 0..2 take global streams 0, 2, 4


def test_padding_only_once_queue_exhausted():
    videos = make_videos(LENGTHS)
    (batches,) = all_batches(videos, batch_size=3, num_replicas=1)
    where = video_of(videos)
    first_pad = next(k for k, batch in enumerate(batches) if PAD_INDEX in batch)
    started = {where[i][0] for batch in batches[: first_pad + 1] for i in batch if i != PAD_INDEX}
    assert started == set(range(len(videos)))  # the last video was already taken from the queue


def test_more_streams_than_videos_pads_idle_rows():
    videos = make_videos([2, 3])
    (batches,) = all_batches(videos, batch_size=4, num_replicas=1)
    assert batches == [
        [0, 2, PAD_INDEX, PAD_INDEX],
        [1, 3, PAD_INDEX, PAD_INDEX],
        [PAD_INDEX, 4, PAD_INDEX, PAD_INDEX],
    ]


@pytest.mark.parametrize(
    ("videos", "kwargs", "message"),
    [
        ([[0]], {"batch_size": 0}, "batch_size"),
        ([[0], []], {"batch_size": 1}, "video 1 is empty"),
        ([[0], [0]], {"batch_size": 1}, "repeats dataset index 0"),
        ([[-1]], {"batch_size": 1}, "negative"),
        ([[0]], {"batch_size": 1, "num_replicas": 2, "rank": 2}, "rank"),
        ([[0]], {"batch_size": 1, "num_replicas": 0, "rank": 0}, "num_replicas"),
    ],
)
def test_invalid_arguments(videos, kwargs, message):
    with pytest.raises(ValueError, match=message):
        StreamingBatchSampler(videos, shuffle=False, **kwargs)


def _sampler(videos, batch_size=2, **kwargs):
    kwargs = {"shuffle": True, "seed": 3, "num_replicas": 1, "rank": 0, **kwargs}
    return StreamingBatchSampler(videos, batch_size, **kwargs)


@pytest.mark.parametrize("consumed", [0, 1, 4])
def test_state_dict_resumes_mid_epoch_with_the_same_batches_and_rng(consumed):
    videos = make_videos(LENGTHS)
    reference = _sampler(videos)
    reference.set_epoch(2)
    draws, batches = [], []
    for batch in reference:  # the data pipeline draws random numbers per batch
        batches.append(batch)
        draws.append(torch.rand(()).item())
        if len(batches) == consumed + 2:  # the trainer fetches ahead of the batch it trains on
            state = reference.state_dict(consumed)
    assert state["epoch"] == 2 and state["step"] == consumed

    torch.manual_seed(12345)  # the resumed process starts from another RNG state
    resumed = _sampler(videos)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # what the trainer does at the start of the resumed epoch
    assert len(resumed) == len(reference)
    rest = []
    for batch in resumed:
        rest.append((batch, torch.rand(()).item()))
    assert [b for b, _ in rest] == batches[consumed:]
    assert [d for _, d in rest] == draws[consumed:]
    assert list(resumed)[0] == batches[0]  # the next iteration is a whole epoch again


def test_finished_epoch_resumes_at_the_next_epoch():
    videos = make_videos(LENGTHS)
    sampler = _sampler(videos)
    sampler.set_epoch(1)
    finished = list(sampler)
    state = sampler.state_dict(len(finished))
    resumed = _sampler(videos)
    resumed.load_state_dict(state)
    assert resumed.epoch == 2
    expected = _sampler(videos)
    expected.set_epoch(2)
    assert list(resumed) == list(expected)


def test_set_epoch_to_another_epoch_drops_the_resume_point():
    videos = make_videos(LENGTHS)
    sampler = _sampler(videos)
    state = sampler.state_dict(3)
    resumed = _sampler(videos)
    resumed.load_state_dict(state)
    resumed.set_epoch(1)
    expected = _sampler(videos)
    expected.set_epoch(1)
    assert list(resumed) == list(expected)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"batch_size": 3}, "batch_size"),
        ({"num_replicas": 2}, "num_replicas"),
        ({"seed": 4}, "seed"),
    ],
)
def test_state_from_another_layout_is_refused(change, key):
    videos = make_videos(LENGTHS)
    state = _sampler(videos).state_dict(2)
    kwargs = {"batch_size": change.pop("batch_size", 2), **change}
    other = _sampler(videos, **kwargs)
    with pytest.raises(ValueError, match=key):
        other.load_state_dict(state)


def test_lightning_sets_the_epoch_through_the_batch_sampler():
    # Lightning's fit loop reaches samplers only via loader.sampler / loader.batch_sampler.sampler
    from lightning_fabric.utilities.data import _set_sampler_epoch
    from torch.utils.data import DataLoader

    videos = make_videos(LENGTHS)
    sampler = _sampler(videos)
    identity = {i: i for i in range(PAD_INDEX, sum(LENGTHS))}  # dataset[index] == index
    loader = DataLoader(identity, batch_sampler=sampler, collate_fn=list)
    _set_sampler_epoch(loader, 5)
    assert sampler.epoch == 5
    expected = _sampler(videos)
    expected.set_epoch(5)
    assert [list(b) for b in loader] == list(expected)

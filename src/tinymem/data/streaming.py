"""Streaming batch sampler: B parallel video streams per rank, DDP-aware (DESIGN.md section 3).

Row ``b`` of step ``k + 1`` is the clip that follows row ``b`` of step ``k`` in the same video,
until that video ends; the row then starts the next video from a shared queue. Videos are
whole: each belongs to exactly one stream, so under DDP each rank owns disjoint videos. Every
rank runs the same number of steps; rows with nothing left to read hold ``PAD_INDEX``.

The sampler is resumable: ``state_dict(consumed)`` records the epoch, the number of batches the
training loop has consumed and the torch RNG state the data pipeline had just before the next
batch was drawn; ``load_state_dict`` makes the next iteration continue from there, so a run
resumed mid-epoch reads exactly the batches (and, in the main process, the random augmentations)
the uninterrupted run would have read.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

PAD_INDEX = -1  # a padded (masked) row: the dataset must yield a placeholder the model ignores
# RNG states kept for the most recently drawn batches: the trainer fetches ahead of the batch it
# trains on (Lightning prefetches one batch; worker processes prefetch more, see README)
RNG_HISTORY = 8


def padding_stream_keys(num_frames: int) -> dict[str, Any]:
    """The stream keys of a ``PAD_INDEX`` item: no video, a first and invalid clip, no captions."""
    return {
        "video_id": -1,
        "video_name": "",
        "clip_index": -1,
        "is_first": True,
        "valid": False,
        "captions": [""] * num_frames,
    }


def stack_videos(videos: Sequence[torch.Tensor], pin_memory: bool = False) -> torch.Tensor:
    """A batch's clips (all of one shape) stacked into [B, ...]; page-locked with ``pin_memory``."""
    stacked = torch.empty(
        (len(videos), *videos[0].shape), dtype=videos[0].dtype, pin_memory=pin_memory
    )
    return torch.stack(list(videos), out=stacked)


def stream_schedule(video_lengths: Sequence[int], num_streams: int) -> tuple[list[list[int]], int]:
    """Assign videos (in queue order) to streams; return each stream's video list and step count.

    At every step each stream whose video is exhausted (or that has none yet) takes the next
    video from the queue, in stream order, so a stream's videos follow each other with no gap.
    """
    streams: list[list[int]] = [[] for _ in range(num_streams)]
    free_at = [(0, stream) for stream in range(num_streams)]  # (step the stream is free, stream)
    num_steps = 0
    for video, length in enumerate(video_lengths):
        step, stream = heapq.heappop(free_at)
        streams[stream].append(video)
        num_steps = max(num_steps, step + length)
        heapq.heappush(free_at, (step + length, stream))
    return streams, num_steps


class StreamingBatchSampler(Sampler[list[int]]):
    """Yields batches of B parallel streams; row b of step k+1 continues row b's video of step k."""

    def __init__(
        self,
        videos: Sequence[Sequence[int]],
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        """Keep the videos (each its dataset indices in temporal order) and the stream layout.

        ``num_replicas`` and ``rank`` default to the torch.distributed world size and rank when a
        process group is initialized, else to 1 and 0. Global stream ``b * num_replicas + rank``
        feeds row ``b`` on rank ``rank`` (MeMViT's slot mapping).
        """
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        distributed = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if distributed else 1
        if rank is None:
            rank = dist.get_rank() if distributed else 0
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be >= 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas - 1}], got {rank}")
        self.videos = [list(indices) for indices in videos]
        seen: set[int] = set()
        for position, indices in enumerate(self.videos):
            if not indices:
                raise ValueError(f"video {position} is empty: every video needs at least one clip")
            if min(indices) < 0:
                raise ValueError(f"video {position} has a negative dataset index: {min(indices)}")
            if seen.intersection(indices):
                repeated = sorted(seen.intersection(indices))[0]
                raise ValueError(f"video {position} repeats dataset index {repeated}")
            seen.update(indices)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        # Lightning calls `set_epoch` on `loader.sampler` and `loader.batch_sampler.sampler` only
        # (lightning_fabric.utilities.data._set_sampler_epoch); pointing `sampler` here makes the
        # trainer reshuffle the video order every epoch.
        self.sampler = self
        self._start_step = 0  # the next iteration starts here (> 0 only when resuming)
        self._start_rng: torch.Tensor | None = None  # torch RNG state to restore at that start
        self._rng_before: dict[int, torch.Tensor] = {}  # step -> RNG state before it was drawn

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch; with ``shuffle`` the video order is drawn from (seed, epoch).

        A pending resume point (``load_state_dict``) survives only if it is for this epoch.
        """
        if epoch != self.epoch:
            self._start_step, self._start_rng = 0, None
        self.epoch = epoch

    def _layout(self) -> dict[str, int]:
        """What a saved position is only valid for."""
        return {
            "num_videos": len(self.videos),
            "batch_size": self.batch_size,
            "num_replicas": self.num_replicas,
            "seed": self.seed,
            "shuffle": int(self.shuffle),
        }

    def state_dict(self, consumed: int) -> dict[str, Any]:
        """The position after the training loop consumed ``consumed`` batches of this epoch.

        ``rng`` is the torch RNG state just before batch ``consumed`` was drawn (the current
        state when it has not been drawn yet); it is this rank's own.
        """
        rng = self._rng_before.get(consumed)
        return {
            "epoch": self.epoch,
            "step": consumed,
            "rng": (rng if rng is not None else torch.get_rng_state()).clone(),
            **self._layout(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a saved position: its epoch at its step, or the next epoch at 0.

        Raises ``ValueError`` when the position was saved for another layout (number of videos,
        batch size, world size, seed or shuffling), where its step would mean other batches.
        """
        layout = self._layout()
        saved = {key: state.get(key) for key in layout}
        if saved != layout:
            raise ValueError(f"sampler state was saved for {saved}, this sampler is {layout}")
        epoch, step = int(state["epoch"]), int(state["step"])
        self._rng_before = {}
        if step >= self.num_steps(epoch):  # the saved epoch was finished
            self.epoch, self._start_step, self._start_rng = epoch + 1, 0, None
        else:
            self.epoch, self._start_step, self._start_rng = epoch, step, state.get("rng")

    def _video_order(self, epoch: int) -> list[int]:
        """The queue order of the videos in `epoch`."""
        if not self.shuffle:
            return list(range(len(self.videos)))
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(len(self.videos), generator=generator).tolist()

    def num_steps(self, epoch: int) -> int:
        """Number of steps in `epoch`; identical on every rank."""
        lengths = [len(self.videos[v]) for v in self._video_order(epoch)]
        return stream_schedule(lengths, self.num_replicas * self.batch_size)[1]

    def _schedule(self) -> tuple[list[list[int]], int]:
        """This rank's rows (dataset indices, unpadded) and the global number of steps."""
        order = self._video_order(self.epoch)
        num_streams = self.num_replicas * self.batch_size
        streams, num_steps = stream_schedule([len(self.videos[v]) for v in order], num_streams)
        rows = []
        for row in range(self.batch_size):
            stream = row * self.num_replicas + self.rank
            rows.append([i for queued in streams[stream] for i in self.videos[order[queued]]])
        return rows, num_steps

    def __iter__(self) -> Iterator[list[int]]:
        """Yield ``len(self)`` batches of ``batch_size`` indices each, ``PAD_INDEX`` for padding.

        After ``load_state_dict`` the first iteration starts at the saved step (restoring the
        saved RNG state first) and yields only the rest of the epoch.
        """
        rows, num_steps = self._schedule()
        start, rng = self._start_step, self._start_rng
        self._start_step, self._start_rng = 0, None
        self._rng_before = {}
        if rng is not None:
            torch.set_rng_state(rng)
        for step in range(start, num_steps):
            self._rng_before[step] = torch.get_rng_state()
            self._rng_before.pop(step - RNG_HISTORY, None)
            yield [row[step] if step < len(row) else PAD_INDEX for row in rows]

    def __len__(self) -> int:
        """Number of steps in this epoch; identical on every rank."""
        return self.num_steps(self.epoch)

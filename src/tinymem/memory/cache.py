"""Per-stream FIFO memory caches with strided sampling and the rolling validity mask."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class MemoryRead:
    """Entries read for one step: `l` entries per stream, oldest last."""

    tokens: Tensor  # [B, l, N, C]
    mask: Tensor  # [B, l, N] bool, True where the token may be attended
    distance: Tensor  # [l] long: how many clips back each entry is (s, 2s, ..., l*s)


def read_offsets(length: int, stride: int) -> tuple[int, ...]:
    """The read schedule: how many clips back each of the `l` read entries is (s, 2s, ..., l*s)."""
    return tuple((k + 1) * stride for k in range(length))


def read_distance(length: int, stride: int, device: torch.device | str | None = None) -> Tensor:
    """`read_offsets` as the [l] long tensor a `MemoryRead` carries."""
    return torch.arange(1, length + 1, device=device) * stride


def stale_rows(row_video: Tensor | None, video_ids: Tensor, is_first: Tensor) -> Tensor | None:
    """Rows [B] whose earlier entries a step must not see; None when every entry is stale.

    A row is stale when it starts a video (`is_first`) or holds another video than the cache
    does; everything is stale when the cache holds no rows yet or the batch size changed.
    """
    if row_video is None or row_video.shape != video_ids.shape:
        return None
    return is_first | (video_ids != row_video.to(video_ids.device))  # [B]


class FifoCache:
    """The last `capacity` entries of one memory type for B parallel streams.

    An entry is `num_tokens` tokens of width `dim` per stream, with a validity mask. Entries are
    stored detached (no backpropagation through time). When a stream starts a new video its
    earlier entries are masked out, never zeroed into the attention.
    """

    def __init__(self, capacity: int, num_tokens: int, dim: int) -> None:
        if capacity < 1:
            raise ValueError(f"FifoCache capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.num_tokens = num_tokens
        self.dim = dim
        self.entries: deque[tuple[Tensor, Tensor]] = deque(maxlen=capacity)
        self.row_video: Tensor | None = None  # [B] video id each stream's entries belong to

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        """Forget every entry (start of an epoch or of a new evaluation)."""
        self.entries.clear()
        self.row_video = None

    def begin_step(self, video_ids: Tensor, is_first: Tensor) -> None:
        """Mask out the entries of streams that start a new video at this step."""
        stale = stale_rows(self.row_video, video_ids, is_first)
        if stale is None:
            self.entries.clear()
        elif bool(stale.any()):
            for _, mask in self.entries:
                mask[stale] = False
        self.row_video = video_ids.clone()

    def read(self, length: int, stride: int) -> MemoryRead:
        """Entries t-s, t-2s, ..., t-l*s; missing ones are zeros with a False mask."""
        assert self.row_video is not None, "begin_step must be called before read"
        batch = self.row_video.shape[0]
        device = self.row_video.device
        tokens = torch.zeros(batch, length, self.num_tokens, self.dim, device=device)
        mask = torch.zeros(batch, length, self.num_tokens, dtype=torch.bool, device=device)
        for k, back in enumerate(read_offsets(length, stride)):
            if back <= len(self.entries):
                entry_tokens, entry_mask = self.entries[-back]
                tokens[:, k] = entry_tokens
                mask[:, k] = entry_mask
        return MemoryRead(tokens=tokens, mask=mask, distance=read_distance(length, stride, device))

    def write(self, tokens: Tensor, mask: Tensor) -> None:
        """Push this step's entry ([B, N, C] tokens, [B, N] mask); the oldest falls out."""
        expected = (self.num_tokens, self.dim)
        if tuple(tokens.shape[1:]) != expected:
            raise ValueError(
                f"memory entry has shape {tuple(tokens.shape[1:])}, cache expects {expected}"
            )
        self.entries.append((tokens.detach().float(), mask.detach().clone().bool()))

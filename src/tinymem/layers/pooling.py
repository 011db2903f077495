"""Token pooling: a 3D conv (and norm) over the T x H x W tokens, prefix tokens passed through."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def prod(values: Sequence[int]) -> int:
    """Product of a size tuple as a Python int."""
    return math.prod(int(v) for v in values)


class TokenPool(nn.Module):
    """Pools the grid tokens of [B, heads, P+THW, C] (or [B, P+THW, C]); the P prefix tokens pass.

    Module names (`pool`, `norm_act`) are those of torchvision's `Pool`; the norm runs over all
    tokens, prefix included, as in torchvision and SlowFast.
    """

    def __init__(self, pool: nn.Module, norm: nn.Module | None) -> None:
        super().__init__()
        self.pool = pool
        self.norm_act = nn.Sequential(norm) if norm is not None else None

    def forward(
        self, x: Tensor, thw: tuple[int, int, int], prefix: int = 1
    ) -> tuple[Tensor, tuple[int, int, int]]:
        """Pool the T x H x W tokens after the first `prefix`; return them and the new grid."""
        squeeze = x.dim() == 3
        if squeeze:
            x = x.unsqueeze(1)  # [B, 1, P+THW, C]
        prefix_tokens, grid = torch.tensor_split(x, indices=(prefix,), dim=2)
        grid = grid.transpose(2, 3)  # [B, heads, C, THW]
        batch, heads, channels = grid.shape[:3]
        grid = grid.reshape((batch * heads, channels) + tuple(thw)).contiguous()
        grid = self.pool(grid)  # [B*heads, C, T', H', W']
        t, h, w = grid.shape[2:]
        grid = grid.reshape(batch, heads, channels, -1).transpose(2, 3)  # [B, heads, T'H'W', C]
        x = torch.cat((prefix_tokens, grid), dim=2)
        if self.norm_act is not None:
            x = self.norm_act(x)
        if squeeze:
            x = x.squeeze(1)
        return x, (t, h, w)

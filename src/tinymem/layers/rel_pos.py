"""Relative positions: MViTv2's decomposed (T, H, W) terms, their fused-attention form, and
the temporal term between grid queries and memory tokens (appendix A)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Grid = tuple[int, int, int]  # (T, H, W) of a token grid


@dataclass
class GridRelPos:
    """MViTv2's decomposed relative positions between grid queries and grid keys."""

    k_thw: Grid  # grid of the (pooled) keys
    tables: tuple[Tensor, Tensor, Tensor]  # rel_pos_h, rel_pos_w, rel_pos_t [L_axis, head_dim]


def _resize_table(table: Tensor, size: int) -> Tensor:
    """Linearly resample a relative-position table [L, C] to [size, C] (identity if equal)."""
    if table.shape[0] == size:
        return table
    resized = F.interpolate(table.permute(1, 0).unsqueeze(0), size=size, mode="linear")
    return resized.squeeze(0).permute(1, 0)


def _relative_index(q_size: int, k_size: int, device: torch.device) -> Tensor:
    """Table index of each (query, key) pair along one axis, scaled when the sizes differ."""
    q_ratio = max(k_size / q_size, 1.0)
    k_ratio = max(q_size / k_size, 1.0)
    q_pos = torch.arange(q_size, device=device)[:, None] * q_ratio
    k_pos = torch.arange(k_size, device=device)[None, :] + (1.0 - k_size)
    return (q_pos - k_pos * k_ratio).long()


def decomposed_rel_terms(
    q_grid: Tensor, q_thw: Grid, grid: GridRelPos
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-axis MViTv2 relative-position logits of grid queries [B, heads, THW_q, C].

    Returns the h, w and t terms [B, heads, q_t, q_h, q_w, k_*]: the logit of query i and key
    j is `h[i, h_j] + w[i, w_j] + t[i, t_j]`. The op order is torchvision's `_add_rel_pos`.
    """
    q_t, q_h, q_w = q_thw
    k_t, k_h, k_w = grid.k_thw
    rel_pos_h, rel_pos_w, rel_pos_t = grid.tables
    device = q_grid.device
    r_h = _resize_table(rel_pos_h, 2 * max(q_h, k_h) - 1)[_relative_index(q_h, k_h, device)]
    r_w = _resize_table(rel_pos_w, 2 * max(q_w, k_w) - 1)[_relative_index(q_w, k_w, device)]
    r_t = _resize_table(rel_pos_t, 2 * max(q_t, k_t) - 1)[_relative_index(q_t, k_t, device)]

    batch, heads, _, dim = q_grid.shape
    r_q = q_grid.reshape(batch, heads, q_t, q_h, q_w, dim)
    rel_h = torch.einsum("bythwc,hkc->bythwk", r_q, r_h)  # [B, heads, q_t, q_h, q_w, k_h]
    rel_w = torch.einsum("bythwc,wkc->bythwk", r_q, r_w)  # [B, heads, q_t, q_h, q_w, k_w]
    r_q = r_q.permute(2, 0, 1, 3, 4, 5).reshape(q_t, batch * heads * q_h * q_w, dim)
    rel_t = torch.matmul(r_q, r_t.transpose(1, 2)).transpose(0, 1)  # [B*heads*q_h*q_w, q_t, k_t]
    rel_t = rel_t.view(batch, heads, q_h, q_w, q_t, k_t).permute(0, 1, 4, 2, 3, 5)
    return rel_h, rel_w, rel_t


def decomposed_rel_pos(q_grid: Tensor, q_thw: Grid, grid: GridRelPos) -> Tensor:
    """MViTv2 decomposed relative-position logits [B, heads, THW_q, THW_k] of grid queries.

    Adding the result to the grid block of the logits reproduces torchvision's `_add_rel_pos`
    bit for bit.
    """
    rel_h, rel_w, rel_t = decomposed_rel_terms(q_grid, q_thw, grid)
    batch, heads = q_grid.shape[:2]
    rel = (
        rel_h[:, :, :, :, :, None, :, None]
        + rel_w[:, :, :, :, :, None, None, :]
        + rel_t[:, :, :, :, :, :, None, None]
    )  # [B, heads, q_t, q_h, q_w, k_t, k_h, k_w]
    return rel.reshape(batch, heads, math.prod(q_thw), math.prod(grid.k_thw))


def grid_indicators(k_thw: Grid, dtype: torch.dtype, device: torch.device) -> Tensor:
    """One-hot (h, w, t) coordinates [THW_k, k_h + k_w + k_t] of the grid keys, in grid order.

    With the per-axis terms of `decomposed_rel_terms` concatenated (h, w, t) onto the queries,
    a dot product with these rows adds exactly the relative-position logit of each key.
    """
    k_t, k_h, k_w = k_thw
    eye_h = torch.eye(k_h, dtype=dtype, device=device)
    eye_w = torch.eye(k_w, dtype=dtype, device=device)
    eye_t = torch.eye(k_t, dtype=dtype, device=device)
    return torch.cat(
        [
            eye_h[None, :, None, :].expand(k_t, k_h, k_w, k_h),
            eye_w[None, None, :, :].expand(k_t, k_h, k_w, k_w),
            eye_t[:, None, None, :].expand(k_t, k_h, k_w, k_t),
        ],
        dim=-1,
    ).reshape(k_t * k_h * k_w, k_h + k_w + k_t)


def memory_rel_pos(table: Tensor, q: Tensor, q_thw: tuple[int, int, int], rows: Tensor) -> Tensor:
    """Logits [B, heads, THW, R] of grid queries [B, heads, THW, d] against table rows [R].

    `table` [rows, q_t, d] holds one vector per (memory time, query time); with clip time row
    `distance - 1` is the memory `distance` clips back.
    """
    batch, heads, _, head_dim = q.shape
    q_t, q_h, q_w = q_thw
    if q_t != table.shape[1]:
        raise ValueError(
            f"memory readout was built for {table.shape[1]} query time steps, "
            f"got {q_t}; build the model with the clip length used at run time"
        )
    r_q = q.reshape(batch, heads, q_t, q_h * q_w, head_dim)
    vectors = table[rows]  # [R, q_t, head_dim]
    rel = torch.einsum("bhtnc,mtc->bhtnm", r_q, vectors)  # [B, heads, q_t, HW, R]
    return rel.reshape(batch, heads, q_t * q_h * q_w, -1)

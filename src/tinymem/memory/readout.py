"""Memory readouts: P_k / P_v (bias-free 1D group conv + shared norm) and MeMViT's dense memory."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinymem.layers.memory_attention import MemoryKV
from tinymem.layers.pooling import TokenPool
from tinymem.layers.rel_pos import memory_rel_pos
from tinymem.memory.cache import MemoryRead
from tinymem.memory.plan import READOUT_HEAD_GROUPS

REL_POS_INIT_STD = 0.02


class MemoryReadout(nn.Module):
    """Turns cached memory tokens into keys/values of one attention block.

    Each entry's tokens are projected separately (entries never mix) by a bias-free grouped
    Conv1d along the token axis (`groups`: a count, or "heads" for one group per attention
    head), whose stride compresses the token count; keys and values then
    share one LayerNorm over the head dimension. A learned table gives the temporal relative
    position term between each query time and each memory token's time: its clip's distance
    (`time_slots=1`), or with `time_slots=S` its clip's distance and the slot of its frame in
    that clip (S time steps per clip, the query's temporal resolution): the table has one row per
    (clips back, slot), row `(distance - 1) * S + slot`.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_heads: int,
        kernel: int,
        stride: int,
        groups: int | str,
        max_distance: int,
        query_time: int,
        time_slots: int = 1,
    ) -> None:
        super().__init__()
        if groups == READOUT_HEAD_GROUPS:
            # Each head's keys/values come from its own slice of the memory channels; where the
            # head count does not divide the memory width (ViT-S: 6 heads, 512-d text), heads
            # share groups: the largest count dividing both.
            groups = math.gcd(num_heads, in_dim)
        if not isinstance(groups, int) or in_dim % groups or out_dim % groups:
            raise ValueError(
                f"memory.readout.groups={groups} must divide the memory width {in_dim} "
                f"and the attention width {out_dim}"
            )
        self.num_heads = num_heads
        self.head_dim = out_dim // num_heads
        self.kernel = kernel
        self.stride = stride
        conv = dict(
            kernel_size=kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False
        )
        self.proj_k = nn.Conv1d(in_dim, out_dim, **conv)
        self.proj_v = nn.Conv1d(in_dim, out_dim, **conv)
        self.norm = nn.LayerNorm(self.head_dim)
        self.time_slots = time_slots
        rows = max_distance * time_slots  # one per (clips back, slot)
        self.rel_pos_mem = nn.Parameter(torch.zeros(rows, query_time, self.head_dim))
        nn.init.trunc_normal_(self.rel_pos_mem, std=REL_POS_INIT_STD)

    def _project(self, conv: nn.Conv1d, x: Tensor, batch: int, entries: int) -> Tensor:
        y = conv(x)  # [B*l, D, N']
        n_out = y.shape[-1]
        y = y.reshape(batch, entries, self.num_heads, self.head_dim, n_out)
        y = self.norm(y.permute(0, 2, 1, 4, 3))  # [B, heads, l, N', head_dim]
        return y.reshape(batch, self.num_heads, entries * n_out, self.head_dim)

    def forward(self, read: MemoryRead) -> MemoryKV:
        """Project a cache read ([B, l, N, C]) into keys/values ([B, heads, l*N', head_dim])."""
        batch, entries, tokens, dim = read.tokens.shape
        x = read.tokens * read.mask.unsqueeze(-1)  # masked tokens contribute nothing
        x = x.reshape(batch * entries, tokens, dim).transpose(1, 2)  # [B*l, C, N]
        key = self._project(self.proj_k, x, batch, entries)
        value = self._project(self.proj_v, x, batch, entries)
        mask = F.max_pool1d(
            read.mask.reshape(batch * entries, 1, tokens).float(),
            self.kernel,
            self.stride,
            self.kernel // 2,
        )  # [B*l, 1, N']: a compressed token is valid if any token in its window is
        n_out = mask.shape[-1]
        mask = mask.reshape(batch, entries * n_out) > 0
        distance = read.distance.repeat_interleave(n_out)  # [l*N']
        slots = self.time_slots
        # slot of each output token: its window centre's position in the entry, in S steps
        centre = torch.arange(n_out, device=distance.device) * self.stride  # [N']
        slot = (centre * slots // tokens).clamp(max=slots - 1)  # [N']
        rel_rows = (read.distance[:, None] - 1) * slots + torch.arange(slots, device=slot.device)
        entry = torch.arange(entries, device=slot.device).repeat_interleave(n_out)  # [l*N']
        return MemoryKV(
            key=key,
            value=value,
            mask=mask,
            distance=distance,
            entry_distance=read.distance,
            rel_rows=rel_rows.reshape(-1),  # [l*S]
            rel_index=entry * slots + slot.repeat(entries),  # [l*N']
        )

    def rel_pos(self, q: Tensor, q_thw: tuple[int, int, int], rows: Tensor) -> Tensor:
        """Temporal relative-position logits [B, heads, THW, R] for grid queries [B, heads, THW, d].

        Only the queries on the T x H x W grid are given (no class or other prefix tokens);
        `rows` [R] are rows of the table (`MemoryKV.rel_rows`, or one per token).
        """
        return memory_rel_pos(self.rel_pos_mem, q, q_thw, rows)


class VisionReadout(nn.Module):
    """MeMViT's dense memory: a block's own keys/values of past clips, compressed.

    The cache holds the block's pooled keys and values of each past clip, side by side
    ([B, l, P + T*H*W, 2C], detached). Each entry's grid is compressed per head by a learned
    depthwise Conv3d (MeMViT: kernel (7, 3, 3), stride (4, 2, 2), no bias) and a LayerNorm,
    separately for keys and values; the P prefix tokens (class, global) pass uncompressed. The
    compression runs at every read with the current weights (MeMViT compresses each entry
    once, the step after writing; the result is the same function, and the compressor trains
    on every entry it reads).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        kv_thw: tuple[int, int, int],
        prefix: int,
        kernel: tuple[int, int, int],
        stride: tuple[int, int, int],
        max_distance: int,
        query_time: int,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.kv_thw = kv_thw
        self.prefix = prefix
        padding = tuple(k // 2 for k in kernel)

        def compressor() -> TokenPool:
            conv = nn.Conv3d(
                self.head_dim,
                self.head_dim,
                kernel,
                stride=stride,
                padding=padding,
                groups=self.head_dim,
                bias=False,
            )
            return TokenPool(conv, nn.LayerNorm(self.head_dim))

        self.compress_k = compressor()
        self.compress_v = compressor()
        self.rel_pos_mem = nn.Parameter(torch.zeros(max_distance, query_time, self.head_dim))
        nn.init.trunc_normal_(self.rel_pos_mem, std=REL_POS_INIT_STD)

    @property
    def entry_tokens(self) -> int:
        """Tokens of one cached entry (prefix + the key/value grid)."""
        return self.prefix + math.prod(self.kv_thw)

    def compressed_tokens(self) -> int:
        """Tokens of one entry after compression (prefix included)."""
        out = [
            (size + 2 * (k // 2) - k) // s + 1
            for size, k, s in zip(
                self.kv_thw,
                self.compress_k.pool.kernel_size,
                self.compress_k.pool.stride,
                strict=True,
            )
        ]
        return self.prefix + math.prod(out)

    def forward(self, read: MemoryRead) -> MemoryKV:
        """Compress cached keys/values [B, l, P+THW, 2C] into [B, heads, l*(P+T'H'W'), d]."""
        batch, entries, tokens, width = read.tokens.shape
        x = read.tokens * read.mask.unsqueeze(-1)
        x = x.reshape(batch * entries, tokens, 2, self.num_heads, self.head_dim)
        x = x.permute(2, 0, 3, 1, 4)  # [2, B*l, heads, P+THW, d]
        key = self.compress_k(x[0], self.kv_thw, self.prefix)[0]  # [B*l, heads, P+T'H'W', d]
        value = self.compress_v(x[1], self.kv_thw, self.prefix)[0]
        n_out = key.shape[2]

        def merge(y: Tensor) -> Tensor:
            y = y.reshape(batch, entries, self.num_heads, n_out, self.head_dim)
            return y.transpose(1, 2).reshape(batch, self.num_heads, entries * n_out, -1)

        valid = read.mask.any(dim=-1)  # [B, l]: an entry is all valid or all missing
        mask = valid.repeat_interleave(n_out, dim=1)  # [B, l*N']
        distance = read.distance.repeat_interleave(n_out)
        return MemoryKV(
            key=merge(key),
            value=merge(value),
            mask=mask,
            distance=distance,
            entry_distance=read.distance,
            rel_rows=read.distance - 1,  # clip time: one table row per entry
            rel_index=torch.arange(entries, device=mask.device).repeat_interleave(n_out),
        )

    def rel_pos(self, q: Tensor, q_thw: tuple[int, int, int], rows: Tensor) -> Tensor:
        """Temporal relative-position logits [B, heads, THW, R], as `MemoryReadout.rel_pos`."""
        return memory_rel_pos(self.rel_pos_mem, q, q_thw, rows)

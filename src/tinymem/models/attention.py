"""MViTv2 pooling attention and blocks with prefix tokens and memory keys/values.

Parameter names follow torchvision's `MultiscaleAttention` / `MultiscaleBlock` (`qkv`, `project`,
`pool_q.pool`, `pool_q.norm_act.0`, `rel_pos_h`, ...), so `mvit_v2_s` state dicts load as they
are. Two layouts:

- `pool_first=False` (torchvision / SlowFast MViTv2-S): one `qkv` projection, then each of q, k, v
  is pooled per head (depthwise Conv3d on the head dimension, then LayerNorm).
- `pool_first=True` (the MeMViT / SlowFast memory layout): the normed input is split into heads
  and pooled first (depthwise Conv3d on input-width / heads channels), then separate `q`, `k`, `v`
  linear projections map the pooled tokens to the output width.

The first `prefix` tokens of a sequence (the class token, then any learned global tokens) are
never pooled, get no relative position and no residual pooling. With `prefix=1` and no memory
the `attention="eager"` path runs torchvision's ops in torchvision's order (bit-identical
output). `attention="sdpa"` runs `torch.nn.functional.scaled_dot_product_attention` (the fused
kernel, forward and backward) with the relative-position terms folded into the dot product, so no
[Nq, Nk] bias is built; it matches the eager path within float rounding (<= 1e-5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.video.mvit import MSBlockConfig, MultiscaleBlock

from tinymem.layers.memory_attention import entry_attention, stack_kv
from tinymem.layers.pooling import TokenPool, prod
from tinymem.layers.rel_pos import decomposed_rel_pos, decomposed_rel_terms, grid_indicators
from tinymem.memory.readout import MemoryKV, MemoryReadout

ATTENTION_IMPLS = ("sdpa", "eager")
REL_POS_INIT_STD = 0.02
# Width multiple of the extended q/k/v of the fused path (keeps GPU fused kernels eligible).
FUSED_HEAD_DIM_MULTIPLE = 8


class MemoryAttention(nn.Module):
    """MViTv2 pooling attention whose keys/values may be extended with memory in front.

    Memory keys/values come from `memory_readout` (attached per block); their logits get the
    readout's temporal relative-position term on the grid rows, and invalid memory tokens are
    removed from the softmax with -inf. Without memory no memory op runs.
    """

    memory_readout: MemoryReadout | None

    def __init__(
        self,
        input_size: Sequence[int],
        embed_dim: int,
        output_dim: int,
        num_heads: int,
        kernel_q: Sequence[int],
        kernel_kv: Sequence[int],
        stride_q: Sequence[int],
        stride_kv: Sequence[int],
        residual_pool: bool,
        residual_with_cls_embed: bool,
        rel_pos_embed: bool,
        dropout: float = 0.0,
        norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
        pool_first: bool = False,
        attention: str = "sdpa",
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_IMPLS:
            raise ValueError(
                f"model.backbone.attention: expected one of {ATTENTION_IMPLS}, got {attention!r}"
            )
        self.embed_dim = embed_dim
        self.output_dim = output_dim
        self.num_heads = num_heads
        self.head_dim = output_dim // num_heads
        self.scaler = 1.0 / math.sqrt(self.head_dim)
        self.residual_pool = residual_pool
        self.residual_with_cls_embed = residual_with_cls_embed
        self.pool_first = pool_first
        self.attention = attention
        self.memory_readout = None
        self.keep_kv = False  # keep this step's pooled keys/values (vision memory writes them)
        self.kept_kv: Tensor | None = None  # [B, P+N_kv, 2*C_out] detached
        self.record_attention = False  # record the attention mass each memory entry receives
        self.memory_attention: Tensor | None = None  # [B, l]

        if pool_first:
            self.q = nn.Linear(embed_dim, output_dim)
            self.k = nn.Linear(embed_dim, output_dim)
            self.v = nn.Linear(embed_dim, output_dim)
        else:
            self.qkv = nn.Linear(embed_dim, 3 * output_dim)
        layers: list[nn.Module] = [nn.Linear(output_dim, output_dim)]
        if dropout > 0.0:
            layers.append(nn.Dropout(dropout, inplace=True))
        self.project = nn.Sequential(*layers)

        pool_dim = (embed_dim if pool_first else output_dim) // num_heads
        self.pool_q = self._pool(pool_dim, kernel_q, stride_q, norm_layer)
        self.pool_k = self._pool(pool_dim, kernel_kv, stride_kv, norm_layer)
        self.pool_v = self._pool(pool_dim, kernel_kv, stride_kv, norm_layer)

        self.rel_pos_h: nn.Parameter | None = None
        self.rel_pos_w: nn.Parameter | None = None
        self.rel_pos_t: nn.Parameter | None = None
        if rel_pos_embed:
            size = max(input_size[1:])
            q_size = size // stride_q[1]
            kv_size = size // stride_kv[1]
            spatial_dim = 2 * max(q_size, kv_size) - 1
            temporal_dim = 2 * input_size[0] - 1
            self.rel_pos_h = nn.Parameter(torch.zeros(spatial_dim, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(spatial_dim, self.head_dim))
            self.rel_pos_t = nn.Parameter(torch.zeros(temporal_dim, self.head_dim))
            for table in (self.rel_pos_h, self.rel_pos_w, self.rel_pos_t):
                nn.init.trunc_normal_(table, std=REL_POS_INIT_STD)

    @staticmethod
    def _pool(
        dim: int,
        kernel: Sequence[int],
        stride: Sequence[int],
        norm_layer: Callable[..., nn.Module],
    ) -> TokenPool | None:
        if prod(kernel) == 1 and prod(stride) == 1:
            return None
        conv = nn.Conv3d(
            dim,
            dim,
            tuple(kernel),  # type: ignore[arg-type]
            stride=tuple(stride),  # type: ignore[arg-type]
            padding=tuple(k // 2 for k in kernel),  # type: ignore[arg-type]
            groups=dim,
            bias=False,
        )
        return TokenPool(conv, norm_layer(dim))

    def _project_then_pool(
        self, x: Tensor, thw: tuple[int, int, int], prefix: int
    ) -> tuple[Tensor, Tensor, Tensor, tuple[int, int, int], tuple[int, int, int]]:
        batch, tokens, _ = x.shape
        q, k, v = (
            self.qkv(x)
            .reshape(batch, tokens, 3, self.num_heads, self.head_dim)
            .transpose(1, 3)
            .unbind(dim=2)
        )  # each [B, heads, N, head_dim]
        k, k_thw = self.pool_k(k, thw, prefix) if self.pool_k is not None else (k, thw)
        if self.pool_v is not None:
            v = self.pool_v(v, thw, prefix)[0]
        q, q_thw = self.pool_q(q, thw, prefix) if self.pool_q is not None else (q, thw)
        return q, k, v, q_thw, k_thw

    def _pool_then_project(
        self, x: Tensor, thw: tuple[int, int, int], prefix: int
    ) -> tuple[Tensor, Tensor, Tensor, tuple[int, int, int], tuple[int, int, int]]:
        batch, tokens, width = x.shape
        heads_in = x.reshape(batch, tokens, self.num_heads, width // self.num_heads).transpose(1, 2)
        pooled = []
        for pool, linear in ((self.pool_q, self.q), (self.pool_k, self.k), (self.pool_v, self.v)):
            y, y_thw = pool(heads_in, thw, prefix) if pool is not None else (heads_in, thw)
            n = y.shape[2]
            y = linear(y.transpose(1, 2).reshape(batch, n, width))  # [B, n, output_dim]
            y = y.reshape(batch, n, self.num_heads, self.head_dim).transpose(1, 2)
            pooled.append((y, y_thw))
        (q, q_thw), (k, k_thw), (v, _) = pooled
        return q, k, v, q_thw, k_thw

    def forward(
        self,
        x: Tensor,
        thw: tuple[int, int, int],
        memory: MemoryKV | None = None,
        prefix: int = 1,
    ) -> tuple[Tensor, tuple[int, int, int]]:
        """Attend x ([B, P+THW, C]) over its pooled keys/values and, if given, memory in front."""
        batch = x.shape[0]
        if self.pool_first:
            q, k, v, thw, k_thw = self._pool_then_project(x, thw, prefix)
        else:
            q, k, v, thw, k_thw = self._project_then_pool(x, thw, prefix)
        if self.keep_kv:
            self.kept_kv = stack_kv(k, v)
        # Recording memory attention needs the probabilities: the eager path computes them.
        recording = self.record_attention and memory is not None
        if self.attention == "eager" or recording:
            x = self._eager(q, k, v, thw, k_thw, memory, prefix)
        else:
            x = self._sdpa(q, k, v, thw, k_thw, memory, prefix)
        x = x.transpose(1, 2).reshape(batch, -1, self.output_dim)  # [B, P+T'H'W', C_out]
        return self.project(x), thw

    def _rel_tables(self) -> tuple[Tensor, Tensor, Tensor] | None:
        if self.rel_pos_h is None or self.rel_pos_w is None or self.rel_pos_t is None:
            return None
        return self.rel_pos_h, self.rel_pos_w, self.rel_pos_t

    def _memory_rel_pos(
        self, q: Tensor, thw: tuple[int, int, int], rows: Tensor, prefix: int
    ) -> Tensor:
        """Temporal logits [B, heads, Nq - prefix, len(rows)] of the grid queries."""
        assert self.memory_readout is not None, "memory given to a block without a readout"
        return self.memory_readout.rel_pos(q[:, :, prefix:], thw, rows)

    def _eager(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        thw: tuple[int, int, int],
        k_thw: tuple[int, int, int],
        memory: MemoryKV | None,
        prefix: int,
    ) -> Tensor:
        attn = torch.matmul(self.scaler * q, k.transpose(2, 3))  # [B, heads, Nq, Nk]
        tables = self._rel_tables()
        if tables is not None:
            attn[:, :, prefix:, prefix:] += decomposed_rel_pos(
                q[:, :, prefix:], thw, k_thw, *tables
            )
        if memory is not None:
            attn_mem = torch.matmul(self.scaler * q, memory.key.transpose(2, 3))  # [B, h, Nq, M]
            rows = memory.rel_rows[memory.rel_index]  # [M] each token's own memory time
            attn_mem[:, :, prefix:] += self._memory_rel_pos(q, thw, rows, prefix)
            # Rolling mask: memory of another video (or missing) is removed from the softmax.
            attn_mem = attn_mem.masked_fill(~memory.mask[:, None, None, :], float("-inf"))
            attn = torch.cat([attn_mem, attn], dim=-1)
            v = torch.cat([memory.value, v], dim=2)
        attn = attn.softmax(dim=-1)
        if self.record_attention and memory is not None:
            self.memory_attention = entry_attention(attn[..., : memory.key.shape[2]], memory)
        x = torch.matmul(attn, v)  # [B, heads, Nq, head_dim]
        if self.residual_pool:
            if self.residual_with_cls_embed:
                x.add_(q)
            else:
                x[:, :, prefix:, :] += q[:, :, prefix:, :]
        return x

    def _sdpa(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        thw: tuple[int, int, int],
        k_thw: tuple[int, int, int],
        memory: MemoryKV | None,
        prefix: int,
    ) -> Tensor:
        """Fused attention with every learned logit term folded into the dot product.

        Queries are extended with their relative-position terms (per grid axis, and per memory
        time: the memory term depends only on the table row of a token's time, one per entry
        or per entry and slot) and keys with matching one-hot indicators, so `q' . k'` equals
        the scaled logit plus all relative positions and no [Nq, Nk] bias is materialised; only
        the memory validity mask (a constant) is passed as `attn_mask`. The width grows by R
        columns for R memory times (l entries, or l x slots), not by one per memory token, so
        the cost stays linear in the memory length. Values are
        zero-padded to the same width, a multiple of `FUSED_HEAD_DIM_MULTIPLE`.
        """
        batch, heads, _, head_dim = q.shape
        pad_rows = (0, 0, prefix, 0)  # prefix queries / keys get no relative position
        q_parts, k_parts = [self.scaler * q], [k]
        rel_width = 0
        tables = self._rel_tables()
        if tables is not None:
            terms = decomposed_rel_terms(q[:, :, prefix:], thw, k_thw, *tables)
            rel = torch.cat([t.reshape(batch, heads, -1, t.shape[-1]) for t in terms], dim=-1)
            rel_width = rel.shape[-1]  # k_h + k_w + k_t
            q_parts.append(F.pad(rel, pad_rows))
            onehot = F.pad(grid_indicators(k_thw, k.dtype, k.device), pad_rows)  # [Nk, R]
            k_parts.append(onehot.expand(batch, heads, -1, -1))
        mem_key, mask = None, None
        if memory is not None:
            times = memory.rel_rows.shape[0]  # R memory times
            time_rel = self._memory_rel_pos(q, thw, memory.rel_rows, prefix)  # [B, h, Nq', R]
            q_parts.append(F.pad(time_rel, pad_rows))
            k_parts.append(k.new_zeros(batch, heads, k.shape[2], times))  # no memory term
            num_mem = memory.key.shape[2]
            time_onehot = F.one_hot(memory.rel_index, times).to(k.dtype)  # [M, R]
            mem_key = torch.cat(
                [
                    F.pad(memory.key.to(k.dtype), (0, rel_width)),
                    time_onehot.expand(batch, heads, -1, -1),
                ],
                dim=-1,
            )  # [B, heads, M, head_dim + rel + R]
            v = torch.cat([memory.value.to(v.dtype), v], dim=2)  # [B, heads, M+Nk, head_dim]
            mask = q.new_zeros(batch, 1, 1, num_mem + k.shape[2])
            # Rolling mask: memory of another video (or missing) is removed from the softmax.
            mask[..., :num_mem].masked_fill_(~memory.mask[:, None, None, :], float("-inf"))
        spare = -sum(p.shape[-1] for p in q_parts) % FUSED_HEAD_DIM_MULTIPLE
        if spare:
            q_parts.append(q.new_zeros(q.shape[:-1] + (spare,)))
            k_parts.append(k.new_zeros(k.shape[:-1] + (spare,)))
            if mem_key is not None:
                mem_key = F.pad(mem_key, (0, spare))
        q_aug = torch.cat([p.to(q.dtype) for p in q_parts], dim=-1)  # [B, heads, Nq, E]
        k_aug = torch.cat(k_parts, dim=-1)  # [B, heads, Nk, E]
        if mem_key is not None:
            k_aug = torch.cat([mem_key, k_aug], dim=2)  # memory keys in front
        v = F.pad(v, (0, q_aug.shape[-1] - head_dim))  # zero columns for the extra terms
        x = F.scaled_dot_product_attention(q_aug, k_aug, v, attn_mask=mask, scale=1.0)
        x = x[..., :head_dim]  # [B, heads, Nq, head_dim]
        if self.residual_pool:
            # Out of place: the fused kernel keeps its output for the backward pass.
            if self.residual_with_cls_embed:
                x = x + q
            else:
                x = x + F.pad(q[:, :, prefix:], pad_rows)
        return x


class MemoryBlock(MultiscaleBlock):
    """torchvision's `MultiscaleBlock` whose attention reads memory and pooling skips prefixes.

    torchvision's constructor builds the norms, MLP, projection and a plain attention; the
    attention is then replaced by a `MemoryAttention` (so construction draws the random numbers
    in the same order as before the two layouts existed, and seeded runs are unchanged) and the
    skip pooling by a prefix-aware `TokenPool`. Extra arguments: `pool_first`, `attention`.
    """

    def __init__(
        self,
        input_size: Sequence[int],
        cnf: MSBlockConfig,
        residual_pool: bool,
        residual_with_cls_embed: bool,
        rel_pos_embed: bool,
        proj_after_attn: bool,
        dropout: float = 0.0,
        stochastic_depth_prob: float = 0.0,
        norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
        pool_first: bool = False,
        attention: str = "sdpa",
    ) -> None:
        super().__init__(
            list(input_size),
            cnf,
            residual_pool=residual_pool,
            residual_with_cls_embed=residual_with_cls_embed,
            rel_pos_embed=rel_pos_embed,
            proj_after_attn=proj_after_attn,
            dropout=dropout,
            stochastic_depth_prob=stochastic_depth_prob,
            norm_layer=norm_layer,
        )
        if self.pool_skip is not None:
            self.pool_skip = TokenPool(self.pool_skip.pool, None)
        self.attn = MemoryAttention(
            input_size,
            cnf.input_channels,
            cnf.output_channels if proj_after_attn else cnf.input_channels,
            cnf.num_heads,
            kernel_q=cnf.kernel_q,
            kernel_kv=cnf.kernel_kv,
            stride_q=cnf.stride_q,
            stride_kv=cnf.stride_kv,
            residual_pool=residual_pool,
            residual_with_cls_embed=residual_with_cls_embed,
            rel_pos_embed=rel_pos_embed,
            dropout=dropout,
            norm_layer=norm_layer,
            pool_first=pool_first,
            attention=attention,
        )

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        thw: tuple[int, int, int],
        memory: MemoryKV | None = None,
        prefix: int = 1,
    ) -> tuple[Tensor, tuple[int, int, int]]:
        """Pre-norm attention (with optional memory) and MLP over [B, P+THW, C] tokens."""
        x_norm1 = self.norm1(x)
        x_attn, thw_new = self.attn(x_norm1, thw, memory, prefix)
        x = x if self.project is None or not self.proj_after_attn else self.project(x_norm1)
        x_skip = x if self.pool_skip is None else self.pool_skip(x, thw, prefix)[0]
        x = x_skip + self.stochastic_depth(x_attn)
        x_norm2 = self.norm2(x)
        x_proj = x if self.project is None or self.proj_after_attn else self.project(x_norm2)
        return x_proj + self.stochastic_depth(self.mlp(x_norm2)), thw_new

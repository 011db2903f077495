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
[Nq, Nk] bias is built; it matches the eager path within float rounding (<= 1e-5). Both paths
are `tinymem.layers.memory_attention.attend_with_memory`, which the ViT backbone runs too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.video.mvit import MSBlockConfig, MultiscaleBlock

from tinymem.layers.memory_attention import MemoryKV, attend_with_memory, stack_kv
from tinymem.layers.pooling import TokenPool, prod
from tinymem.layers.rel_pos import Grid, GridRelPos
from tinymem.memory.readout import MemoryReadout

ATTENTION_IMPLS = ("sdpa", "eager")
REL_POS_INIT_STD = 0.02


class MemoryAttention(nn.Module):
    """MViTv2 pooling attention whose keys/values may be extended with memory in front.

    `cnf` gives the input width, heads and q/kv pooling kernels and strides. Memory keys/values
    come from `memory_readout` (attached per block); their logits get the readout's temporal
    relative-position term on the grid rows, and invalid memory tokens are removed from the
    softmax with -inf (`attend_with_memory`). Without memory no memory op runs.
    """

    memory_readout: MemoryReadout | None

    def __init__(
        self,
        input_size: Sequence[int],
        cnf: MSBlockConfig,
        output_dim: int,
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
        embed_dim, num_heads = cnf.input_channels, cnf.num_heads
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
        self.pool_q = self._pool(pool_dim, cnf.kernel_q, cnf.stride_q, norm_layer)
        self.pool_k = self._pool(pool_dim, cnf.kernel_kv, cnf.stride_kv, norm_layer)
        self.pool_v = self._pool(pool_dim, cnf.kernel_kv, cnf.stride_kv, norm_layer)

        self.rel_pos_h: nn.Parameter | None = None
        self.rel_pos_w: nn.Parameter | None = None
        self.rel_pos_t: nn.Parameter | None = None
        if rel_pos_embed:
            size = max(input_size[1:])
            q_size = size // cnf.stride_q[1]
            kv_size = size // cnf.stride_kv[1]
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
        self, x: Tensor, thw: Grid, memory: MemoryKV | None = None, prefix: int = 1
    ) -> tuple[Tensor, Grid]:
        """Attend x ([B, P+THW, C]) over its pooled keys/values and, if given, memory in front."""
        batch = x.shape[0]
        if self.pool_first:
            q, k, v, thw, k_thw = self._pool_then_project(x, thw, prefix)
        else:
            q, k, v, thw, k_thw = self._project_then_pool(x, thw, prefix)
        if self.keep_kv:
            self.kept_kv = stack_kv(k, v)
        tables = (self.rel_pos_h, self.rel_pos_w, self.rel_pos_t)
        grid_rel_pos = None if any(t is None for t in tables) else GridRelPos(k_thw, tables)
        x, mass = attend_with_memory(
            q,
            k,
            v,
            memory,
            thw=thw,
            prefix=prefix,
            memory_rel_pos=None if self.memory_readout is None else self.memory_readout.rel_pos,
            fused=self.attention == "sdpa",
            fold=True,
            scale=self.scaler,
            grid_rel_pos=grid_rel_pos,
            record=self.record_attention,
        )  # [B, heads, Nq, head_dim]
        if mass is not None:
            self.memory_attention = mass
        if self.residual_pool:
            # Out of place: the fused kernel keeps its output for the backward pass.
            if self.residual_with_cls_embed:
                x = x + q
            else:
                x = x + F.pad(q[:, :, prefix:], (0, 0, prefix, 0))  # no residual on prefix rows
        x = x.transpose(1, 2).reshape(batch, -1, self.output_dim)  # [B, P+T'H'W', C_out]
        return self.project(x), thw


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
        pool_first: bool = False,
        attention: str = "sdpa",
        **block_options: Any,  # torchvision's MultiscaleBlock keywords, as its MViT passes them
    ) -> None:
        super().__init__(list(input_size), cnf, **block_options)
        if self.pool_skip is not None:
            self.pool_skip = TokenPool(self.pool_skip.pool, None)
        self.attn = MemoryAttention(
            input_size,
            cnf,
            cnf.output_channels if self.proj_after_attn else cnf.input_channels,
            block_options["residual_pool"],
            block_options["residual_with_cls_embed"],
            block_options["rel_pos_embed"],
            block_options.get("dropout", 0.0),
            block_options.get("norm_layer", nn.LayerNorm),
            pool_first=pool_first,
            attention=attention,
        )

    def forward(  # type: ignore[override]
        self, x: Tensor, thw: Grid, memory: MemoryKV | None = None, prefix: int = 1
    ) -> tuple[Tensor, Grid]:
        """Pre-norm attention (with optional memory) and MLP over [B, P+THW, C] tokens."""
        x_norm1 = self.norm1(x)
        x_attn, thw_new = self.attn(x_norm1, thw, memory, prefix)
        x = x if self.project is None or not self.proj_after_attn else self.project(x_norm1)
        x_skip = x if self.pool_skip is None else self.pool_skip(x, thw, prefix)[0]
        x = x_skip + self.stochastic_depth(x_attn)
        x_norm2 = self.norm2(x)
        x_proj = x if self.project is None or self.proj_after_attn else self.project(x_norm2)
        return x_proj + self.stochastic_depth(self.mlp(x_norm2)), thw_new

"""Multi-scale attention and blocks (torchvision's MViTv2 modules) with memory keys/values.

The modules subclass torchvision's `MultiscaleAttention` / `MultiscaleBlock`, so parameter names
and the op order of the current-clip path are torchvision's; a block without memory adds no op.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchvision.models.video.mvit import (
    MultiscaleAttention,
    MultiscaleBlock,
    _add_rel_pos,
    _add_shortcut,
)

from tinymem.memory.readout import MemoryKV, MemoryReadout


class MemoryAttention(MultiscaleAttention):
    """MViTv2 pooling attention whose keys/values may be extended with memory in front."""

    memory_readout: MemoryReadout | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memory_readout = None

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        thw: tuple[int, int, int],
        memory: MemoryKV | None = None,
    ) -> tuple[Tensor, tuple[int, int, int]]:
        """Attend x ([B, 1+THW, C]) over its pooled keys/values and, if given, memory in front."""
        B, N, C = x.shape
        q, k, v = (
            self.qkv(x)
            .reshape(B, N, 3, self.num_heads, self.head_dim)
            .transpose(1, 3)
            .unbind(dim=2)
        )  # each [B, heads, N, head_dim]
        if self.pool_k is not None:
            k, k_thw = self.pool_k(k, thw)
        else:
            k_thw = thw
        if self.pool_v is not None:
            v = self.pool_v(v, thw)[0]
        if self.pool_q is not None:
            q, thw = self.pool_q(q, thw)

        attn = torch.matmul(self.scaler * q, k.transpose(2, 3))  # [B, heads, Nq, Nk]
        if self.rel_pos_h is not None and self.rel_pos_w is not None and self.rel_pos_t is not None:
            attn = _add_rel_pos(attn, q, thw, k_thw, self.rel_pos_h, self.rel_pos_w, self.rel_pos_t)
        if memory is not None:
            attn, v = self._prepend_memory(attn, q, thw, v, memory)
        attn = attn.softmax(dim=-1)

        x = torch.matmul(attn, v)  # [B, heads, Nq, head_dim]
        if self.residual_pool:
            _add_shortcut(x, q, self.residual_with_cls_embed)
        x = x.transpose(1, 2).reshape(B, -1, self.output_dim)
        x = self.project(x)
        return x, thw

    def _prepend_memory(
        self, attn: Tensor, q: Tensor, thw: tuple[int, int, int], v: Tensor, memory: MemoryKV
    ) -> tuple[Tensor, Tensor]:
        assert self.memory_readout is not None
        attn_mem = torch.matmul(self.scaler * q, memory.key.transpose(2, 3))  # [B, heads, Nq, M]
        attn_mem[:, :, 1:] += self.memory_readout.rel_pos(q[:, :, 1:], thw, memory.distance)
        # Rolling mask: memory of another video (or missing) is removed from the softmax.
        attn_mem = attn_mem.masked_fill(~memory.mask[:, None, None, :], float("-inf"))
        return torch.cat([attn_mem, attn], dim=-1), torch.cat([memory.value, v], dim=2)


class MemoryBlock(MultiscaleBlock):
    """torchvision's MultiscaleBlock with a `MemoryAttention` that can read memory."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        old = self.attn
        self.attn = MemoryAttention(
            kwargs["input_size"],
            old.embed_dim,
            old.output_dim,
            old.num_heads,
            kernel_q=kwargs["cnf"].kernel_q,
            kernel_kv=kwargs["cnf"].kernel_kv,
            stride_q=kwargs["cnf"].stride_q,
            stride_kv=kwargs["cnf"].stride_kv,
            residual_pool=kwargs["residual_pool"],
            residual_with_cls_embed=kwargs["residual_with_cls_embed"],
            rel_pos_embed=kwargs["rel_pos_embed"],
            dropout=kwargs.get("dropout", 0.0),
            norm_layer=kwargs.get("norm_layer", torch.nn.LayerNorm),
        )

    def forward(  # type: ignore[override]
        self, x: Tensor, thw: tuple[int, int, int], memory: MemoryKV | None = None
    ) -> tuple[Tensor, tuple[int, int, int]]:
        """Pre-norm attention (with optional memory) and MLP, as torchvision's block."""
        x_norm1 = self.norm1(x)
        x_attn, thw_new = self.attn(x_norm1, thw, memory)
        x = x if self.project is None or not self.proj_after_attn else self.project(x_norm1)
        x_skip = x if self.pool_skip is None else self.pool_skip(x, thw)[0]
        x = x_skip + self.stochastic_depth(x_attn)
        x_norm2 = self.norm2(x)
        x_proj = x if self.project is None or self.proj_after_attn else self.project(x_norm2)
        return x_proj + self.stochastic_depth(self.mlp(x_norm2)), thw_new

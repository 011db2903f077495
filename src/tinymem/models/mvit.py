"""MViTv2 video backbone (torchvision's modules) with per-block memory hooks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from torch import Tensor, nn
from torchvision.models.video.mvit import MSBlockConfig, MViT

from tinymem.memory.cache import MemoryRead
from tinymem.memory.readout import MemoryReadout
from tinymem.models.attention import MemoryBlock

LAYER_NORM_EPS = 1e-6
SPATIAL_POOL_STRIDE = (1, 2, 2)  # q stride at a stage start: halve H and W
POOL_KERNEL = (3, 3, 3)


@dataclass
class BackboneOutput:
    """What a backbone returns for one clip."""

    tokens: Tensor  # [B, P + T*H*W, C] normalised: P prefix tokens (class, global), then the grid
    thw: tuple[int, int, int]  # the grid (T, H, W) of the last block
    captured: dict[int, Tensor] = field(default_factory=dict)  # block -> [B, G, C] global tokens


def block_setting(
    depth: int,
    embed_dim: int,
    num_heads: int,
    stage_starts: Sequence[int],
    kv_stride: Sequence[int],
) -> list[MSBlockConfig]:
    """MViTv2 block configs: at each stage start heads and width double and q is pooled 2x.

    The kv stride is adaptive: it starts at `kv_stride` and is halved spatially (never below 1)
    at every stage start. `block_setting(16, 96, 1, [1, 3, 14], [1, 8, 8])` is torchvision's
    `mvit_v2_s` table.
    """
    configs = []
    dim, heads, kv = embed_dim, num_heads, list(kv_stride)
    for index in range(depth):
        stride_q = [1, 1, 1]
        dim_out = dim
        if index in stage_starts:
            heads *= 2
            dim_out = dim * 2
            stride_q = list(SPATIAL_POOL_STRIDE)
            kv = [kv[0]] + [max(s // 2, 1) for s in kv[1:]]
        configs.append(
            MSBlockConfig(
                num_heads=heads,
                input_channels=dim,
                output_channels=dim_out,
                kernel_q=list(POOL_KERNEL),
                kernel_kv=list(POOL_KERNEL),
                stride_q=stride_q,
                stride_kv=list(kv),
            )
        )
        dim = dim_out
    return configs


class MViTBackbone(MViT):
    """torchvision's MViTv2 (module names kept, classifier removed) whose blocks read memory.

    `forward(video, memory)` returns a `BackboneOutput` (normalised tokens [B, 1+T'H'W', C] and
    their grid). Memory readouts are attached per block with `attach_memory`.
    """

    def __init__(
        self,
        num_frames: int,
        crop_size: int,
        depth: int,
        embed_dim: int,
        num_heads: int,
        stage_starts: Sequence[int],
        kv_stride: Sequence[int],
        patch_kernel: Sequence[int] = (3, 7, 7),
        patch_stride: Sequence[int] = (2, 4, 4),
        patch_padding: Sequence[int] = (1, 3, 3),
        drop_path: float = 0.0,
    ) -> None:
        setting = block_setting(depth, embed_dim, num_heads, stage_starts, kv_stride)
        super().__init__(
            spatial_size=(crop_size, crop_size),
            temporal_size=num_frames,
            block_setting=setting,
            residual_pool=True,
            residual_with_cls_embed=False,
            rel_pos_embed=True,
            proj_after_attn=True,
            stochastic_depth_prob=drop_path,
            block=MemoryBlock,
            norm_layer=partial(nn.LayerNorm, eps=LAYER_NORM_EPS),
            patch_embed_kernel=tuple(patch_kernel),
            patch_embed_stride=tuple(patch_stride),
            patch_embed_padding=tuple(patch_padding),
        )
        del self.head  # task heads live in tinymem.models.heads
        self.block_setting = setting
        self.out_dim = setting[-1].output_channels
        self.patch_stride = tuple(patch_stride)

    def token_grid(self, index: int) -> tuple[int, int, int]:
        """(T, H, W) of the query tokens that block `index` outputs."""
        t = self.pos_encoding.temporal_size
        h, w = self.pos_encoding.spatial_size
        for cfg in self.block_setting[: index + 1]:
            h, w = h // cfg.stride_q[1], w // cfg.stride_q[2]
        return t, h, w

    def attach_memory(
        self, index: int, in_dim: int, kernel: int, stride: int, groups: int, max_distance: int
    ) -> None:
        """Give block `index` a readout of memory tokens of width `in_dim`."""
        cfg = self.block_setting[index]
        self.blocks[index].attn.memory_readout = MemoryReadout(
            in_dim=in_dim,
            out_dim=cfg.output_channels,
            num_heads=cfg.num_heads,
            kernel=kernel,
            stride=stride,
            groups=groups,
            max_distance=max_distance,
            query_time=self.pos_encoding.temporal_size,
        )

    def forward(  # type: ignore[override]
        self, video: Tensor, memory: Mapping[int, MemoryRead] | None = None
    ) -> BackboneOutput:
        """Encode a clip [B, 3, T, H, W] reading `memory[block]` where given."""
        x = self.conv_proj(video)  # [B, C, T', H', W']
        x = x.flatten(2).transpose(1, 2)  # [B, T'H'W', C]
        x = self.pos_encoding(x)  # [B, 1+T'H'W', C] (class token first)
        thw = (self.pos_encoding.temporal_size,) + self.pos_encoding.spatial_size
        memory = memory or {}
        for index, block in enumerate(self.blocks):
            read = memory.get(index)
            kv = block.attn.memory_readout(read) if read is not None else None
            x, thw = block(x, thw, kv)
        return BackboneOutput(tokens=self.norm(x), thw=thw)

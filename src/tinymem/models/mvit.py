"""MViTv2 video backbone (torchvision's module names) with memory hooks and global tokens."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torchvision.models.video.mvit import MSBlockConfig, MViT, MViT_V2_S_Weights

from tinymem.memory.cache import MemoryRead
from tinymem.models.attention import ATTENTION_IMPLS, MemoryBlock
from tinymem.models.backbone import (
    Backbone,
    BackboneOutput,
    BlockGeometry,
    collect_block_state,
)
from tinymem.models.checkpoints import (
    CheckpointError,
    convert_slowfast_mvit,
    is_slowfast_mvit,
    load_strict,
    memvit_memory_keys,
    read_state_dict,
)

log = logging.getLogger(__name__)

LAYER_NORM_EPS = 1e-6
SPATIAL_POOL_STRIDE = (1, 2, 2)  # q stride at a stage start: halve H and W
POOL_KERNEL = (3, 3, 3)
GLOBAL_TOKEN_INIT_STD = 0.02
KINETICS400 = "kinetics400"  # backbone.pretrained value for torchvision's published weights
# MViTv2's block options as torchvision's mvit_v2_s sets them: pooled residual, decomposed
# relative positions, channel projection after attention, class token kept out of the residual.
MVIT_V2_BLOCK_OPTIONS = {
    "residual_pool": True,
    "residual_with_cls_embed": False,
    "rel_pos_embed": True,
    "proj_after_attn": True,
}
TORCHVISION_NUM_CLASSES = 400  # torchvision's default head, built (then dropped) when headless


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


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
    `mvit_v2_s` table; `block_setting(24, 96, 1, [2, 5, 21], [1, 8, 8])` is MViTv2-B.
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


def kinetics400_state_dict() -> dict[str, Tensor]:
    """torchvision's `MViT_V2_S_Weights.KINETICS400_V1` from the torch hub cache; never downloads.

    Without a cached copy this fails at once with a message saying where to put the file or how
    to pass a local copy instead. The file is read weights-only, like every checkpoint.
    """
    weights = MViT_V2_S_Weights.KINETICS400_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    if not cached.is_file():
        raise CheckpointError(
            f"backbone.pretrained={KINETICS400}: {cached} is not in the torch hub cache and "
            f"nothing is downloaded; download {weights.url} on a machine with network and pass "
            f"model.backbone.pretrained=/path/to/{cached.name} (or copy it to {cached})"
        )
    return read_state_dict(cached)


class MViTBackbone(Backbone, MViT):
    """MViTv2 with torchvision's module names whose blocks read memory.

    `forward(video, memory, capture_blocks)` returns a `BackboneOutput`: normalised tokens
    [B, P+T'H'W', C] (P = 1 class token + `num_global_tokens`), their grid, the global tokens
    output by each block in `capture_blocks`, and classifier logits when `num_classes` is set
    (torchvision's head: norm -> class token -> dropout -> linear, `head.1`). Memory readouts
    are attached per block with `attach_memory` (`Backbone`).

    `pretrained` is None, "kinetics400" (torchvision's `MViT_V2_S_Weights.KINETICS400_V1`, for
    the mvit16 layout at 16x224x224) or a local checkpoint in torchvision or SlowFast/MeMViT
    format; loading is strict except that a checkpoint's classifier is dropped when the backbone
    has none, MeMViT's own memory modules are dropped (TinyMem reads memory differently) and the
    global tokens keep their initialisation when the checkpoint has none (all logged).
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
        pool_first: bool = False,
        attention: str = "sdpa",
        num_global_tokens: int = 0,
        num_classes: int | None = None,
        head_dropout: float = 0.5,
        checkpoint_activations: bool = False,
        pretrained: str | None = None,
    ) -> None:
        for name, size, stride in (
            ("num_frames", num_frames, patch_stride[0]),
            ("crop_size", crop_size, patch_stride[1]),
        ):
            if size % stride:
                raise ValueError(
                    f"model.backbone.{name}={size} is not divisible by the patch stride {stride}"
                )
        if attention not in ATTENTION_IMPLS:
            raise ValueError(
                f"model.backbone.attention: expected one of {ATTENTION_IMPLS}, got {attention!r}"
            )
        if num_global_tokens < 0:
            raise ValueError(
                f"model.backbone.num_global_tokens: expected >= 0, got {num_global_tokens}"
            )
        setting = block_setting(depth, embed_dim, num_heads, stage_starts, kv_stride)
        super().__init__(
            spatial_size=(crop_size, crop_size),
            temporal_size=num_frames,
            block_setting=setting,
            **MVIT_V2_BLOCK_OPTIONS,
            dropout=head_dropout,
            stochastic_depth_prob=drop_path,
            num_classes=TORCHVISION_NUM_CLASSES if num_classes is None else num_classes,
            block=partial(MemoryBlock, pool_first=pool_first, attention=attention),
            norm_layer=partial(nn.LayerNorm, eps=LAYER_NORM_EPS),
            patch_embed_kernel=tuple(patch_kernel),
            patch_embed_stride=tuple(patch_stride),
            patch_embed_padding=tuple(patch_padding),
        )
        if num_classes is None:
            del self.head  # task heads live in tinymem.models.heads
        else:
            self.head[0].inplace = False  # the normalised tokens are returned too
        self.num_classes = num_classes
        self.block_setting = setting
        self.out_dim = setting[-1].output_channels
        self.frame_stride = patch_stride[0]
        self.input_shape = (3, num_frames, crop_size, crop_size)  # C, T, H, W of a clip
        self.pool_first = pool_first
        self.checkpoint_activations = checkpoint_activations
        self.num_global_tokens = num_global_tokens
        self.global_tokens: nn.Parameter | None = None
        if num_global_tokens:
            self.global_tokens = nn.Parameter(torch.zeros(num_global_tokens, embed_dim))
            nn.init.trunc_normal_(self.global_tokens, std=GLOBAL_TOKEN_INIT_STD)
        if pretrained is not None:
            self.load_pretrained(pretrained)

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the grid: the class token and the global tokens."""
        return 1 + self.num_global_tokens

    def token_grid(self, index: int) -> tuple[int, int, int]:
        """(T, H, W) of the query tokens that block `index` outputs."""
        t = self.pos_encoding.temporal_size
        h, w = self.pos_encoding.spatial_size
        for cfg in self.block_setting[: index + 1]:
            h, w = h // cfg.stride_q[1], w // cfg.stride_q[2]
        return t, h, w

    def block_geometry(self, index: int) -> BlockGeometry:
        """Width, heads, query time, key/value grid and prefix of block `index`."""
        cfg = self.block_setting[index]
        return BlockGeometry(
            width=cfg.output_channels,
            num_heads=cfg.num_heads,
            query_time=self.pos_encoding.temporal_size,
            kv_thw=self.kv_grid(index),
            prefix=self.num_prefix_tokens,
        )

    def kv_grid(self, index: int) -> tuple[int, int, int]:
        """(T, H, W) of block `index`'s pooled keys/values."""
        grid = self.token_grid(index - 1)  # the grid the block reads (index -1: the stem's)
        pool = self.blocks[index].attn.pool_k
        if pool is None:
            return grid
        conv = pool.pool
        return tuple(  # type: ignore[return-value]
            conv_output_size(n, k, s, p)
            for n, k, s, p in zip(grid, conv.kernel_size, conv.stride, conv.padding, strict=True)
        )

    def load_pretrained(self, pretrained: str) -> None:
        """Load "kinetics400" or a torchvision/SlowFast-format checkpoint file, strictly."""
        if pretrained == KINETICS400:
            state = kinetics400_state_dict()
            source = f"backbone.pretrained={KINETICS400} (torchvision MViT_V2_S_Weights)"
        else:
            state = read_state_dict(pretrained)
            source = f"backbone.pretrained={pretrained}"
        if is_slowfast_mvit(state):
            dropped = memvit_memory_keys(state)
            if dropped:
                log.warning("%s: MeMViT memory weights not used: %s", source, dropped)
            state = convert_slowfast_mvit({k: v for k, v in state.items() if k not in dropped})
        has_pool_first = any(k.endswith(".attn.q.weight") for k in state)
        has_qkv = any(k.endswith(".attn.qkv.weight") for k in state)
        if has_pool_first != self.pool_first and has_pool_first != has_qkv:
            layout = "pool-first (attn.q/k/v)" if has_pool_first else "qkv-first (attn.qkv)"
            raise CheckpointError(
                f"{source} has the {layout} attention layout; build the backbone with "
                f"model.backbone.pool_first={str(has_pool_first).lower()}"
            )
        if self.num_classes is None:
            classifier = sorted(k for k in state if k.startswith("head."))
            if classifier:
                log.info("%s: classifier %s not used (backbone has none)", source, classifier)
            state = {k: v for k, v in state.items() if not k.startswith("head.")}
        if self.global_tokens is not None and "global_tokens" not in state:
            log.info("%s: no global tokens in the checkpoint; they keep their init", source)
            state["global_tokens"] = self.global_tokens.detach().clone()
        load_strict(self, state, source)

    def encode(
        self, video: Tensor, memory: Mapping[int, MemoryRead], capture: set[int], grid_at: set[int]
    ) -> BackboneOutput:
        """`forward` (`Backbone`): the class token's output is classified when there is a head."""
        x = self.conv_proj(video)  # [B, C, T', H', W']
        x = x.flatten(2).transpose(1, 2)  # [B, T'H'W', C]
        x = self.pos_encoding(x)  # [B, 1+T'H'W', C] (class token first)
        if self.global_tokens is not None:
            glob = self.global_tokens.expand(x.shape[0], -1, -1)  # [B, G, C]
            x = torch.cat([x[:, :1], glob, x[:, 1:]], dim=1)  # [B, 1+G+T'H'W', C]
        prefix = self.num_prefix_tokens
        thw = (self.pos_encoding.temporal_size,) + self.pos_encoding.spatial_size
        captured, grids = {}, {}
        for index, block in enumerate(self.blocks):
            read = memory.get(index)
            kv = block.attn.memory_readout(read) if read is not None else None
            if self.checkpoint_activations and torch.is_grad_enabled():
                x, thw = checkpoint(block, x, thw, kv, prefix, use_reentrant=False)
            else:
                x, thw = block(x, thw, kv, prefix)
            if index in capture:
                captured[index] = x[:, 1:prefix]  # [B, G, C_block]
            if index in grid_at:
                grids[index] = (x[:, prefix:], thw)  # [B, T*H*W, C_block]
        tokens = self.norm(x)
        logits = self.head(tokens[:, 0]) if self.num_classes is not None else None
        kept, attention = collect_block_state(self.blocks)
        return BackboneOutput(
            tokens=tokens,
            thw=thw,
            captured=captured,
            grids=grids,
            logits=logits,
            kept_kv=kept,
            memory_attention=attention,
        )


def torchvision_twin(net: MViTBackbone, drop_path: float = 0.0) -> MViT:
    """torchvision's `MViT` with the block table, clip size and classifier of `net`."""
    _, frames, size, _ = net.input_shape
    return MViT(
        spatial_size=(size, size),
        temporal_size=frames,
        block_setting=net.block_setting,
        **MVIT_V2_BLOCK_OPTIONS,
        stochastic_depth_prob=drop_path,
        num_classes=net.num_classes or TORCHVISION_NUM_CLASSES,
        norm_layer=partial(nn.LayerNorm, eps=LAYER_NORM_EPS),
    )

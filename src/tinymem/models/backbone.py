"""The backbone contract: what TinyMem needs of a video backbone (MViTv2, VideoViT) and what a
backbone returns for one clip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from torch import Tensor, nn

from tinymem.memory.cache import MemoryRead
from tinymem.memory.readout import VisionReadout


@dataclass
class BackboneOutput:
    """What a backbone returns for one clip."""

    tokens: Tensor  # [B, P + T*H*W, C] normalised: P prefix tokens (class, global), then the grid
    thw: tuple[int, int, int]  # the grid (T, H, W) of the last block
    captured: dict[int, Tensor] = field(default_factory=dict)  # block -> [B, G, C_block] raw
    grids: dict[int, tuple[Tensor, tuple[int, int, int]]] = field(default_factory=dict)
    # block -> (raw output grid tokens [B, T*H*W, C_block], its (T, H, W)) for `grid_blocks`
    logits: Tensor | None = None  # [B, K] classifier output when the backbone has one
    kept_kv: dict[int, Tensor] = field(default_factory=dict)  # block -> [B, P+N_kv, 2C] detached
    memory_attention: dict[int, Tensor] = field(default_factory=dict)  # block -> [B, l] mass


def collect_block_state(blocks: Sequence[nn.Module]) -> tuple[dict, dict]:
    """Kept keys/values and recorded memory attention of the blocks that produced them."""
    kept, attention = {}, {}
    for index, block in enumerate(blocks):
        attn = block.attn
        if attn.keep_kv and attn.kept_kv is not None:
            kept[index], attn.kept_kv = attn.kept_kv, None
        if attn.memory_attention is not None:
            attention[index], attn.memory_attention = attn.memory_attention, None
    return kept, attention


class Backbone(Protocol):
    """A video backbone whose attention blocks can read memory (`build_backbone` builds one).

    Every block has an `attn` with `memory_readout`, `keep_kv`/`kept_kv` and
    `record_attention`/`memory_attention` (what `collect_block_state` gathers).
    """

    blocks: nn.ModuleList
    out_dim: int  # width of the returned tokens

    def block_width(self, index: int) -> int:
        """Token width of block `index`'s output."""
        ...

    def attach_memory(
        self,
        index: int,
        in_dim: int,
        kernel: int,
        stride: int,
        groups: int | str,
        max_distance: int,
        frame_time: bool = False,
    ) -> None:
        """Give block `index` a readout (P_k/P_v) of `in_dim`-wide memory tokens."""
        ...

    def attach_vision_memory(
        self, index: int, kernel: Sequence[int], stride: Sequence[int], max_distance: int
    ) -> VisionReadout:
        """Make block `index` keep its keys/values and read them back compressed (MeMViT)."""
        ...

    def __call__(
        self,
        video: Tensor,
        memory: Mapping[int, MemoryRead] | None = None,
        capture_blocks: Sequence[int] = (),
        grid_blocks: Sequence[int] = (),
    ) -> BackboneOutput:
        """Encode a clip [B, 3, T, H, W] reading each block's memory."""
        ...

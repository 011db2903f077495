"""The backbone contract: what TinyMem needs of a video backbone (MViTv2, VideoViT) and what a
backbone returns for one clip."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from tinymem.memory.cache import MemoryRead
from tinymem.memory.readout import MemoryReadout, VisionReadout


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


@dataclass(frozen=True)
class BlockGeometry:
    """What a memory readout needs to know of one attention block."""

    width: int  # channels of the block's output (and of its keys/values)
    num_heads: int
    query_time: int  # T of the block's query grid
    kv_thw: tuple[int, int, int]  # (T, H, W) of the block's keys/values
    prefix: int  # tokens before the grid (class, global)


@runtime_checkable
class BackboneParts(Protocol):
    """What a video backbone provides; :class:`Backbone` builds the rest of the contract on it.

    A new backbone derives from `Backbone` (before `nn.Module`) and has these attributes and
    methods. Every block has an `attn` with `memory_readout`, `keep_kv`/`kept_kv` and
    `record_attention`/`memory_attention` (what `collect_block_state` gathers).
    """

    blocks: nn.ModuleList
    out_dim: int  # width of the returned tokens
    global_tokens: Tensor | None  # [G, C] or [1, G, C] learned global tokens, if any
    input_shape: tuple[int, int, int, int]  # (C, T, H, W) of the clip it was built for
    frame_stride: int  # frames per token (temporal patch stride)

    def block_geometry(self, index: int) -> BlockGeometry:
        """Width, heads, query time, key/value grid and prefix of block `index`."""
        ...

    def encode(
        self, video: Tensor, memory: Mapping[int, MemoryRead], capture: set[int], grid_at: set[int]
    ) -> BackboneOutput:
        """`Backbone.forward` once its arguments are checked."""
        ...


class Backbone:
    """A video backbone whose attention blocks can read memory (`build_backbone` builds one).

    Both backbones derive from it, before `nn.Module` (`MViTBackbone`, `VideoViT`), and provide
    :class:`BackboneParts` (`encode`, `block_geometry` and the attributes it names); it checks
    the clip and the blocks asked for (`forward`) and attaches the readouts.
    """

    __call__: Callable[..., BackboneOutput]

    def forward(
        self,
        video: Tensor,
        memory: Mapping[int, MemoryRead] | None = None,
        capture_blocks: Iterable[int] = (),
        grid_blocks: Iterable[int] = (),
    ) -> BackboneOutput:
        """Encode a clip [B, 3, T, H, W] reading `memory[block]` where given.

        Blocks in `capture_blocks` return their output global tokens, blocks in `grid_blocks`
        their output grid tokens (both before the final norm).
        """
        self._check_input(video)
        memory = memory or {}
        capture, grid_at = set(capture_blocks), set(grid_blocks)
        self._check_blocks(memory, capture, grid_at)
        return self.encode(video, memory, capture, grid_at)

    def _check_input(self, video: Tensor) -> None:
        """Raise a ValueError naming the expected shape unless `video` is a clip of this size."""
        if video.dim() == len(self.input_shape) + 1 and tuple(video.shape[1:]) == self.input_shape:
            return
        channels, frames, height, width = self.input_shape
        hint = ""
        if video.dim() == len(self.input_shape) + 1 and video.shape[2] % self.frame_stride:
            hint = (
                f"; {video.shape[2]} frames are not a multiple of the temporal patch stride "
                f"{self.frame_stride}"
            )
        raise ValueError(
            f"{type(self).__name__} input: expected a clip of shape [B, {channels}, {frames}, "
            f"{height}, {width}] (model.backbone.num_frames={frames}, crop_size={height}), "
            f"got {list(video.shape)}{hint}"
        )

    def _check_blocks(
        self, memory: Mapping[int, MemoryRead], capture: set[int], grid_at: set[int]
    ) -> None:
        depth = len(self.blocks)
        for index in memory:
            if not 0 <= index < depth or self.blocks[index].attn.memory_readout is None:
                raise ValueError(
                    f"memory given for block {index}, which has no memory readout "
                    "(attach_memory first)"
                )
        if capture and self.global_tokens is None:
            raise ValueError(
                f"capture_blocks={sorted(capture)} needs global tokens: set "
                "model.backbone.num_global_tokens > 0"
            )
        for name, wanted in (("capture_blocks", capture), ("grid_blocks", grid_at)):
            bad = sorted(index for index in wanted if not 0 <= index < depth)
            if bad:
                raise ValueError(f"{name}: {bad} are not blocks (blocks are 0..{depth - 1})")

    def block_width(self, index: int) -> int:
        """Token width of block `index`'s output."""
        return self.block_geometry(index).width

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
        """Give block `index` a readout (P_k/P_v) of memory tokens of width `in_dim`.

        `frame_time`: each token carries its frame's time (at the query's temporal resolution)
        in the relative-position term, not only its clip's.
        """
        block = self.block_geometry(index)
        slots = block.query_time if frame_time else 1  # table rows per clip
        readout = MemoryReadout(
            in_dim,
            block.width,
            block.num_heads,
            kernel,
            stride,
            groups,
            max_distance,
            query_time=block.query_time,
            time_slots=slots,
        )
        self.blocks[index].attn.memory_readout = readout

    def attach_vision_memory(
        self, index: int, kernel: Sequence[int], stride: Sequence[int], max_distance: int
    ) -> VisionReadout:
        """Make block `index` read (and keep) its own compressed keys/values (MeMViT)."""
        block = self.block_geometry(index)
        readout = VisionReadout(
            dim=block.width,
            num_heads=block.num_heads,
            kv_thw=block.kv_thw,
            prefix=block.prefix,
            kernel=tuple(kernel),
            stride=tuple(stride),
            max_distance=max_distance,
            query_time=block.query_time,
        )
        attn = self.blocks[index].attn
        attn.memory_readout = readout
        attn.keep_kv = True
        return readout

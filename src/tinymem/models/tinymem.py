"""TinyMem: a backbone whose planned blocks read memory, plus a task head (the forward contract)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from tinymem.memory.cache import MemoryRead
from tinymem.memory.plan import FRAME_TIMED_TYPES, MemorySpec
from tinymem.memory.readout import VisionReadout
from tinymem.models.backbone import Backbone, BackboneOutput
from tinymem.models.heads import MultiTaskHead, RoIHead, roi_pool, split_grid
from tinymem.models.mvit import MViTBackbone, conv_output_size
from tinymem.models.vit import VideoViT

if TYPE_CHECKING:
    from tinymem.memory.clip_vision import ClipVisionEncoder
    from tinymem.memory.encoders import TextEncoder

# Backbones by `model.backbone.arch`; each derives from `Backbone`.
BACKBONES: dict[str, type[Backbone]] = {"mvit": MViTBackbone, "vit": VideoViT}
# MeMViT's compression of dense visual memory (ANCHORS: kernel (7,3,3), stride (4,2,2)).
MEMVIT_KERNEL = (7, 3, 3)
MEMVIT_STRIDE = (4, 2, 2)


def build_backbone(cfg: Mapping[str, Any]) -> Backbone:
    """Build the backbone named by `cfg["arch"]` from the rest of `cfg`."""
    kwargs = dict(cfg)
    arch = kwargs.pop("arch", "mvit")
    if arch not in BACKBONES:
        raise ValueError(f"model.backbone.arch: expected one of {sorted(BACKBONES)}, got {arch!r}")
    return BACKBONES[arch](**kwargs)


def region_widths(backbone: nn.Module, spec: MemorySpec) -> dict[str, int]:
    """Token width of the region memories: `region` (RoI features) and `region_token`.

    Per-layer region tokens (`source_block` None) have their block's width: not listed.
    """
    region = (
        backbone.out_dim if spec.region_block is None else backbone.block_width(spec.region_block)
    )
    if spec.source_block is None:
        return {"region": region}
    return {"region": region, "region_token": backbone.block_width(spec.source_block)}


@dataclass
class TinyMemOutput:
    """What one streamed step produces."""

    logits: Tensor | dict[str, Tensor]  # detection: [B, N, K] per box; classification: per task
    box_features: Tensor | None = None  # [B, N, C] the head's per-box features
    region_features: Tensor | None = None  # [B, N, C_r] RoI features region memory stores
    region_tokens: dict[str, Tensor] = field(default_factory=dict)  # cache -> [B, G, C_block]
    kept_kv: dict[str, Tensor] = field(default_factory=dict)  # vision cache -> [B, P+N_kv, 2C]
    memory_attention: dict[str, Tensor] = field(default_factory=dict)  # type -> [B, l] mass


class TinyMem(nn.Module):
    """Backbone with memory readouts attached per the plan; subclasses add the task head.

    `memory_dims` gives the token width each non-visual memory type is read at (e.g.
    {"text": 512}); `vision` memory (MeMViT) needs none: each of its blocks caches its own
    keys/values. `memory_shapes` gives the (tokens, width) one clip writes per non-visual type.
    The frozen encoders of text and CLIP image memory (None when not used, or when the reads
    are made elsewhere, as in the bench) belong to the network: the learned projection of text
    memory is applied to what is read, in `encode`.
    """

    def __init__(
        self,
        backbone: nn.Module,
        spec: MemorySpec,
        memory_dims: Mapping[str, int],
        vision_kernel: Sequence[int] = MEMVIT_KERNEL,
        vision_stride: Sequence[int] = MEMVIT_STRIDE,
        memory_shapes: Mapping[str, tuple[int, int]] | None = None,
        text_encoder: TextEncoder | None = None,
        clip_vision_encoder: ClipVisionEncoder | None = None,
    ) -> None:
        super().__init__()
        # registered first: parameter order (optimizer state) as in earlier checkpoints
        self.text_encoder = text_encoder
        self.clip_vision_encoder = clip_vision_encoder
        self.backbone = backbone
        self.spec = spec
        self.layer_types = spec.layer_types()
        self.cache_names = spec.cache_names()
        self._memory_shapes = dict(memory_shapes or {})
        self._entry_shapes: dict[str, tuple[int, int]] = {}
        for index, kind in self.layer_types.items():
            if kind == "vision":
                readout = backbone.attach_vision_memory(
                    index, vision_kernel, vision_stride, max_distance=spec.cache_size
                )
                width = 2 * backbone.block_width(index)  # keys and values side by side
                self._entry_shapes[self.cache_names[index]] = (readout.entry_tokens, width)
            else:
                if spec.per_block(kind):  # per-layer region tokens: the block's own global tokens
                    in_dim = backbone.block_width(index)
                    self._entry_shapes[self.cache_names[index]] = (spec.n_region, in_dim)
                else:
                    in_dim = memory_dims[kind]
                backbone.attach_memory(
                    index,
                    in_dim=in_dim,
                    kernel=spec.readout_kernel,
                    stride=spec.readout_stride,
                    groups=spec.readout_groups,
                    max_distance=spec.cache_size,
                    # appendix A's per-token memory time: frame time where tokens have one
                    frame_time=spec.frame_time and kind in FRAME_TIMED_TYPES,
                )
        self.capture_blocks: tuple[int, ...] = ()  # blocks whose output global tokens are kept
        self.region_token_caches: dict[str, int] = {}  # cache name -> block it is written from
        if "region_token" in spec.types:
            per_layer = spec.source_block is None
            self.region_token_caches = {
                name: index if per_layer else spec.source_block
                for index, name in self.cache_names.items()
                if self.layer_types[index] == "region_token"
            }
            self.capture_blocks = tuple(sorted(set(self.region_token_caches.values())))
        pool_block = "region" in spec.types and spec.region_block is not None
        self.grid_blocks = (spec.region_block,) if pool_block else ()

    def vision_entry_shapes(self) -> dict[str, tuple[int, int]]:
        """(tokens, width) of one entry of each per-block cache (vision, per-layer G tokens)."""
        return dict(self._entry_shapes)

    def entry_shapes(self) -> dict[str, tuple[int, int]]:
        """(tokens, width) of one entry of every cache the plan reads (a `MemoryStream`'s)."""
        return {**self._memory_shapes, **self._entry_shapes}

    def project_memory(self, memory: Mapping[str, MemoryRead]) -> dict[str, MemoryRead]:
        """Reads as the readouts take them: text memory through the learned text head."""
        memory = dict(memory)
        if "text" in memory and self.text_encoder is not None:
            read = memory["text"]
            memory["text"] = replace(read, tokens=self.text_encoder.project(read.tokens))
        return memory

    def memory_tokens(self, entry_tokens: Mapping[str, int]) -> dict[int, tuple[int, int]]:
        """Memory tokens each augmented block attends to, before and after compression.

        `entry_tokens` gives the tokens one clip writes per non-visual type (e.g. text: T,
        region: N_region); vision entries are the block's own keys/values (prefix tokens
        included). Counts are for a full cache: l entries, i.e. `l * tokens per entry`.
        """
        counts = {}
        length = self.spec.length
        for index in self.cache_names:
            readout = self.backbone.blocks[index].attn.memory_readout
            if isinstance(readout, VisionReadout):
                before, after = readout.entry_tokens, readout.compressed_tokens()
            else:
                before = entry_tokens[self.layer_types[index]]
                pad = readout.kernel // 2
                after = conv_output_size(before, readout.kernel, readout.stride, pad)
            counts[index] = (length * before, length * after)
        return counts

    def record_memory_attention(self, enabled: bool) -> None:
        """Record the attention mass of each memory entry at every step (for inspection)."""
        for block in self.backbone.blocks:
            block.attn.record_attention = enabled

    def encode(
        self, video: Tensor, memory: Mapping[str, MemoryRead] | None
    ) -> tuple[BackboneOutput, TinyMemOutput]:
        """Run the backbone on a clip [B, 3, T, H, W] reading each block's planned cache."""
        per_block = {}
        if memory:
            memory = self.project_memory(memory)
            per_block = {index: memory[name] for index, name in self.cache_names.items()}
        encoded = self.backbone(
            video, per_block, capture_blocks=self.capture_blocks, grid_blocks=self.grid_blocks
        )
        attention: dict[str, list[Tensor]] = {}
        for index, mass in encoded.memory_attention.items():
            attention.setdefault(self.layer_types[index], []).append(mass)
        out = TinyMemOutput(
            logits=torch.empty(0),
            region_tokens={
                name: encoded.captured[block] for name, block in self.region_token_caches.items()
            },
            kept_kv={self.cache_names[i]: kv for i, kv in encoded.kept_kv.items()},
            memory_attention={k: torch.stack(v).mean(dim=0) for k, v in attention.items()},
        )
        return encoded, out


class TinyMemDetector(TinyMem):
    """TinyMem with the RoI detection head (AVA): per-box action logits."""

    def __init__(self, backbone: nn.Module, head: RoIHead, spec: MemorySpec, **kwargs: Any):
        super().__init__(backbone, spec, **kwargs)
        self.head = head

    def forward(
        self,
        video: Tensor,
        boxes: Tensor,
        box_mask: Tensor,
        memory: Mapping[str, MemoryRead] | None = None,
    ) -> TinyMemOutput:
        """Detect actions for boxes [B, N, 4] in a clip [B, 3, T, H, W] given memory reads."""
        encoded, out = self.encode(video, memory)
        input_size = tuple(video.shape[-2:])
        _, grid = split_grid(encoded.tokens, encoded.thw)  # [B, THW, C]
        roi = self.head.roi_features(grid, encoded.thw, boxes, box_mask, input_size)  # [B, N, C]
        out.logits, out.box_features = self.head.classify(roi, grid, encoded.thw, boxes, box_mask)
        # Region memory stores the person boxes' RoI features (section 3.2) with every head,
        # not the attention head's output.
        out.region_features = roi
        if self.grid_blocks:  # region memory pooled from an earlier block's output grid
            grid, thw = encoded.grids[self.grid_blocks[0]]
            out.region_features = roi_pool(grid, thw, boxes, box_mask, input_size)
        return out


class TinyMemClassifier(TinyMem):
    """TinyMem with a clip classification head (EK-100 verb/noun, Breakfast): logits per task."""

    def __init__(self, backbone: nn.Module, head: MultiTaskHead, spec: MemorySpec, **kwargs: Any):
        super().__init__(backbone, spec, **kwargs)
        self.head = head

    def forward(
        self, video: Tensor, memory: Mapping[str, MemoryRead] | None = None
    ) -> TinyMemOutput:
        """Classify a clip [B, 3, T, H, W] given memory reads: {task: [B, K_task]}."""
        encoded, out = self.encode(video, memory)
        out.logits = self.head(encoded.tokens, encoded.thw)
        return out

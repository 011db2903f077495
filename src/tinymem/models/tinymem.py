"""TinyMem: MViTv2 backbone + memory plan + detection head (the forward contract)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from tinymem.memory.cache import MemoryRead
from tinymem.memory.plan import MemorySpec
from tinymem.models.heads import RoIHead
from tinymem.models.mvit import MViTBackbone
from tinymem.models.vit import VideoViT

# Backbones by `model.backbone.arch`. A backbone has `blocks`, `out_dim`,
# `attach_memory(index, in_dim, kernel, stride, groups, max_distance)` and
# `forward(video, memory: {block: MemoryRead}) -> BackboneOutput`.
BACKBONES: dict[str, type[nn.Module]] = {"mvit": MViTBackbone, "vit": VideoViT}


def build_backbone(cfg: Mapping[str, Any]) -> nn.Module:
    """Build the backbone named by `cfg["arch"]` from the rest of `cfg`."""
    kwargs = dict(cfg)
    arch = kwargs.pop("arch", "mvit")
    if arch not in BACKBONES:
        raise ValueError(f"model.backbone.arch: expected one of {sorted(BACKBONES)}, got {arch!r}")
    return BACKBONES[arch](**kwargs)


@dataclass
class DetectionOutput:
    """What one streamed step produces."""

    logits: Tensor  # [B, N, K] per-box action logits
    box_features: Tensor  # [B, N, C] RoI features (what region memory stores)


class TinyMemDetector(nn.Module):
    """Backbone whose planned blocks read memory, followed by the RoI detection head.

    `memory_dims` gives the token width of each memory type (e.g. {"text": 512}); region memory
    stores RoI features of the head, so its width is the backbone's output width.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: RoIHead,
        spec: MemorySpec,
        memory_dims: Mapping[str, int],
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.spec = spec
        self.layer_types = spec.layer_types()
        for index, kind in self.layer_types.items():
            backbone.attach_memory(
                index,
                in_dim=memory_dims[kind],
                kernel=spec.readout_kernel,
                stride=spec.readout_stride,
                groups=spec.readout_groups,
                max_distance=spec.cache_size,
            )

    def forward(
        self,
        video: Tensor,
        boxes: Tensor,
        box_mask: Tensor,
        memory: Mapping[str, MemoryRead] | None = None,
    ) -> DetectionOutput:
        """Detect actions for boxes [B, N, 4] in a clip [B, 3, T, H, W] given memory reads."""
        per_block = {}
        if memory:
            per_block = {index: memory[kind] for index, kind in self.layer_types.items()}
        encoded = self.backbone(video, per_block)
        logits, features = self.head(
            encoded.tokens, encoded.thw, boxes, box_mask, tuple(video.shape[-2:])
        )
        return DetectionOutput(logits=logits, box_features=features)

"""Plain model helpers: backbone sizes, a written memory cache, a detection module on the demo."""

from __future__ import annotations

import torch

from tinymem.config import compose_config
from tinymem.lit.detection import DetectionModule
from tinymem.memory.cache import FifoCache

# A 4-block MViT (one stage change, memory-sized 16 channels) and MViTv2-S's layout (mvit16).
TINY_MVIT = dict(depth=4, embed_dim=32, num_heads=1, stage_starts=[1], kv_stride=[1, 4, 4])
MVIT16 = dict(TINY_MVIT, depth=16, embed_dim=96, stage_starts=[1, 3, 14], kv_stride=[1, 8, 8])


def written_cache(
    video_ids: list[int], next_ids: list[int], next_first: list[bool], dim: int = 16
) -> FifoCache:
    """A 2-entry cache of 4 random tokens: one entry written per row, then the next step begun."""
    rows = len(video_ids)
    cache = FifoCache(capacity=2, num_tokens=4, dim=dim)
    cache.begin_step(torch.tensor(video_ids), torch.ones(rows, dtype=torch.bool))
    cache.write(torch.randn(rows, 4, dim), torch.ones(rows, 4, dtype=torch.bool))
    cache.begin_step(torch.tensor(next_ids), torch.tensor(next_first))
    return cache


def detection_module(*overrides: str, seed: int = 0, **kwargs) -> DetectionModule:
    """The `train` config's DetectionModule (3 classes) with `overrides`, seeded."""
    cfg = compose_config("train", list(overrides))
    torch.manual_seed(seed)
    options = {"class_ids": [1, 2, 3], **kwargs}
    return DetectionModule(
        backbone=cfg.model.backbone, head=cfg.model.head, memory=cfg.memory, **options
    )


# The bench's tiny model: 4 blocks, memory on blocks 0 and 2; clips of 4 frames at 64 px.
BENCH_TINY = ["model=mvit_tiny"]
BENCH_TEXT_WIDTH = 32  # the text width the bench's tiny runs give text memory


def memory_outputs(net, block: int, cache: FifoCache, clip: torch.Tensor):
    """A backbone's tokens on `clip`: without memory, reading `cache` (l=2, s=1) at `block`, and
    with that read fully masked."""
    with torch.no_grad():
        plain = net(clip).tokens
        read = net(clip, {block: cache.read(length=2, stride=1)}).tokens
        masked = cache.read(length=2, stride=1)
        masked.mask[:] = False
        return plain, read, net(clip, {block: masked}).tokens

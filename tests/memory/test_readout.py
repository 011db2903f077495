"""Memory readouts: pooled keys and values, their mask and distances, grouped heads, compression."""

from __future__ import annotations

import pytest
import torch

from helpers.model import TINY_MVIT
from tinymem.config import compose_config
from tinymem.memory.cache import FifoCache, MemoryRead
from tinymem.memory.readout import MemoryReadout, VisionReadout
from tinymem.models.mvit import MViTBackbone


def _readout(in_dim: int, out_dim: int, **options) -> MemoryReadout:
    """A memory readout pooling with kernel 3, stride 2 for clips of 2 query time steps."""
    return MemoryReadout(
        in_dim=in_dim, out_dim=out_dim, kernel=3, stride=2, query_time=2, **options
    )


def test_readout_compresses_tokens_and_mask() -> None:
    readout = _readout(8, 12, num_heads=3, groups=4, max_distance=4)
    assert readout.proj_k.bias is None and readout.proj_k.groups == 4
    cache = FifoCache(capacity=4, num_tokens=16, dim=8)
    cache.begin_step(torch.tensor([0]), torch.tensor([True]))
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, :3] = True  # 3 real region tokens, 13 padding
    cache.write(torch.randn(1, 16, 8), mask)
    cache.begin_step(torch.tensor([0]), torch.tensor([False]))
    kv = readout(cache.read(length=2, stride=1))
    assert kv.key.shape == (1, 3, 2 * 8, 4)  # 16 tokens -> 8 per entry, 2 entries
    assert kv.mask[0, :8].tolist() == [True, True] + [False] * 6  # windows touching tokens 0-2
    assert not kv.mask[0, 8:].any()  # the missing second entry
    assert kv.distance.tolist() == [1] * 8 + [2] * 8


def test_readout_groups_heads_gives_each_head_its_own_channel_group() -> None:
    """Section 3.3's group conv: `groups: heads` (the recipes) -> head h reads channel slice h."""
    readout = _readout(64, 32, num_heads=4, groups="heads", max_distance=2)
    assert readout.proj_k.groups == readout.proj_v.groups == 4
    assert readout.proj_k.weight.shape == (32, 16, 3)  # 4x fewer weights than groups=1
    tokens = torch.randn(1, 1, 4, 64)  # [B, l, N, C]
    read = MemoryRead(tokens, torch.ones(1, 1, 4, dtype=torch.bool), torch.tensor([1]))
    changed = tokens.clone()
    changed[..., :16] += 1.0  # the first head's channel group only
    base = readout(read).key  # [B, heads, l*N', head_dim]
    moved = readout(MemoryRead(changed, read.mask, read.distance)).key
    differs = (moved - base).abs().amax(dim=(0, 2, 3)) > 0  # [heads]
    assert differs.tolist() == [True, False, False, False]
    six_heads = MemoryReadout(64, 48, 6, 3, 2, "heads", max_distance=2, query_time=2)
    assert six_heads.proj_k.groups == 2  # heads share groups where 6 does not divide 64
    for recipe in ("ava/tinymem16_12", "epic_kitchens/tinymem16_4", "breakfast/tinymem16_4"):
        cfg = compose_config("train", [f"experiment={recipe}"])
        assert cfg.memory.readout.groups == "heads"


def test_vision_compression_output_length_matches_memvit_formula() -> None:
    readout = VisionReadout(
        dim=8,
        num_heads=2,
        kv_thw=(8, 14, 14),
        prefix=1,
        kernel=(7, 3, 3),
        stride=(4, 2, 2),
        max_distance=4,
        query_time=8,
    )
    assert readout.compressed_tokens() == 1 + 2 * 7 * 7  # ANCHORS: 8x14x14 -> 2x7x7 (+ class)
    read_tokens = torch.randn(3, 2, readout.entry_tokens, 2 * 8)
    mask = torch.ones(3, 2, readout.entry_tokens, dtype=torch.bool)
    mask[1, 1] = False  # second entry of row 1 missing
    from tinymem.memory.cache import MemoryRead

    kv = readout(MemoryRead(read_tokens, mask, torch.tensor([2, 4])))
    per_entry = readout.compressed_tokens()
    assert kv.key.shape == (3, 2, 2 * per_entry, 4)
    assert kv.mask[1, :per_entry].all() and not kv.mask[1, per_entry:].any()
    assert kv.distance.tolist() == [2] * per_entry + [4] * per_entry


@pytest.mark.parametrize("frames", [4])
def test_readout_rejects_other_clip_length(frames: int) -> None:
    net = MViTBackbone(num_frames=frames, crop_size=64, **TINY_MVIT)
    net.attach_memory(0, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    readout = net.blocks[0].attn.memory_readout
    with pytest.raises(ValueError, match="query time steps"):
        readout.rel_pos(torch.zeros(1, 1, 3 * 4, 32), (3, 2, 2), torch.tensor([1]))

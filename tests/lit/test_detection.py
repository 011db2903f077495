"""FIFO caches, strided sampling, the rolling mask, readout, and no leakage across videos."""

from __future__ import annotations

import functools

import pytest
import torch

from tinymem.config import compose_config
from tinymem.lit.detection import DetectionModule
from tinymem.memory.cache import FifoCache, MemoryRead
from tinymem.memory.plan import ConfigError, parse_memory_spec, select_layers
from tinymem.memory.readout import MemoryReadout
from tinymem.memory.stream import MemoryStream


def _step(cache: FifoCache, value: float, video_ids, is_first) -> None:
    cache.begin_step(torch.tensor(video_ids), torch.tensor(is_first))
    batch = len(video_ids)
    cache.write(torch.full((batch, 2, 3), value), torch.ones(batch, 2, dtype=torch.bool))


def test_fifo_keeps_at_most_capacity_entries() -> None:
    cache = FifoCache(capacity=3, num_tokens=2, dim=3)
    for step in range(7):
        _step(cache, float(step), [0], [step == 0])
        assert len(cache) == min(step + 1, 3)
    assert [float(t[0, 0, 0]) for t, _ in cache.entries] == [4.0, 5.0, 6.0]  # oldest dropped


def test_read_samples_entries_with_stride() -> None:
    cache = FifoCache(capacity=6, num_tokens=2, dim=3)  # l=3, s=2
    for step in range(10):
        _step(cache, float(step), [0], [step == 0])
    cache.begin_step(torch.tensor([0]), torch.tensor([False]))  # the step t=10
    read = cache.read(length=3, stride=2)
    assert read.tokens.shape == (1, 3, 2, 3)
    assert read.tokens[0, :, 0, 0].tolist() == [8.0, 6.0, 4.0]  # clips t-2, t-4, t-6
    assert read.distance.tolist() == [2, 4, 6]
    assert read.mask.all()


def test_missing_entries_are_masked_zeros() -> None:
    cache = FifoCache(capacity=4, num_tokens=2, dim=3)
    _step(cache, 5.0, [0], [True])
    cache.begin_step(torch.tensor([0]), torch.tensor([False]))
    read = cache.read(length=2, stride=2)
    assert not read.mask.any()  # t-2 and t-4 do not exist yet
    assert (read.tokens == 0).all()


def test_rolling_mask_per_row() -> None:
    cache = FifoCache(capacity=2, num_tokens=2, dim=3)
    _step(cache, 1.0, [0, 1], [True, True])
    _step(cache, 2.0, [0, 1], [False, False])
    # row 0 continues video 0, row 1 starts video 7 (flagged), so only row 0 keeps memory
    cache.begin_step(torch.tensor([0, 7]), torch.tensor([False, True]))
    read = cache.read(length=2, stride=1)
    assert read.mask[0].all()
    assert not read.mask[1].any()
    # a changed video id masks even without the flag
    cache.write(torch.zeros(2, 2, 3), torch.ones(2, 2, dtype=torch.bool))
    cache.begin_step(torch.tensor([3, 7]), torch.tensor([False, False]))
    read = cache.read(length=2, stride=1)
    assert not read.mask[0].any()
    assert read.mask[1, 0].all() and not read.mask[1, 1].any()


def test_write_rejects_wrong_entry_shape() -> None:
    cache = FifoCache(capacity=2, num_tokens=2, dim=3)
    cache.begin_step(torch.tensor([0]), torch.tensor([True]))
    with pytest.raises(ValueError, match="cache expects"):
        cache.write(torch.zeros(1, 4, 3), torch.ones(1, 4, dtype=torch.bool))


def test_stream_memory_capacity_is_length_times_stride() -> None:
    memory = MemoryStream({"text": (4, 8), "region": (16, 8)}, length=3, stride=2)
    assert {c.capacity for c in memory.caches.values()} == {6}


def test_readout_compresses_tokens_and_mask() -> None:
    readout = MemoryReadout(
        in_dim=8,
        out_dim=12,
        num_heads=3,
        kernel=3,
        stride=2,
        groups=4,
        max_distance=4,
        query_time=2,
    )
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


def test_plan_selection_matches_memvit_even_blocks() -> None:
    assert select_layers(16, 0.5) == (0, 2, 4, 6, 8, 10, 12, 14)
    spec = parse_memory_spec(
        dict(
            kind="text+region",
            layer_fraction=0.5,
            layers=None,
            plan="auto",
            length=2,
            stride=1,
            n_region=16,
            readout=dict(kernel=3, stride=2, groups=1),
        ),
        depth=16,
    )
    assert spec.plan == "TTTTTTTR"
    with pytest.raises(ConfigError, match="memory.kind"):
        parse_memory_spec(dict(spec.__dict__, kind="vision+x"), depth=16)


def _tiny_module(memory: str) -> DetectionModule:
    cfg = compose_config("train", [f"memory={memory}"])
    torch.manual_seed(0)
    module = DetectionModule(
        backbone=cfg.model.backbone,
        head=cfg.model.head,
        memory=cfg.memory,
        class_ids=[1, 2, 3],
    )
    return module.eval()


def _batch(video_ids, is_first, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    batch = len(video_ids)
    return {
        "video": torch.randn(batch, 3, 4, 64, 64, generator=gen),
        "boxes": torch.tensor([[[0.1, 0.2, 0.6, 0.9], [0.5, 0.1, 0.9, 0.5]]]).repeat(batch, 1, 1),
        "box_mask": torch.tensor([[True, True]]).repeat(batch, 1),
        "box_scores": torch.tensor([[0.9, 0.6]]).repeat(batch, 1),
        "video_id": torch.tensor(video_ids),
        "is_first": torch.tensor(is_first),
        "valid": torch.ones(batch, dtype=torch.bool),
        "captions": [[f"caption {seed} {row} {t}" for t in range(4)] for row in range(batch)],
    }


ALL_MEMORY_KINDS = [
    "vision",
    "text",
    "region",
    "region_token",
    "clip_vision",
    "text+region",
    "text+region_token",
]


@pytest.mark.parametrize("memory", ALL_MEMORY_KINDS)
def test_no_memory_leakage_across_videos(memory: str) -> None:
    """Video B's outputs are identical whether or not video A came before it in its row."""
    module = _tiny_module(memory)
    # Row 0 streams video A (id 5, three clips) then video B (id 9); row 1 streams video 2.
    with torch.no_grad():
        module._reset("val")
        for step in range(3):
            module.stream_step(_batch([5, 2], [step == 0, step == 0], seed=100 + step), "val")
        after_a = [
            module.stream_step(_batch([9, 2], [step == 0, False], seed=200 + step), "val").logits
            for step in range(3)
        ]
        module._reset("val")
        fresh = [
            module.stream_step(
                _batch([9, 2], [step == 0, step == 0], seed=200 + step), "val"
            ).logits
            for step in range(3)
        ]
    for with_a, without_a in zip(after_a, fresh, strict=True):
        assert torch.equal(with_a[0], without_a[0])  # row 0 = video B: bit-identical
    # and memory is actually used: within video B the later steps depend on earlier clips
    with torch.no_grad():
        module._reset("val")
        module.stream_step(_batch([9, 2], [True, True], seed=999), "val")
        other_history = module.stream_step(_batch([9, 2], [False, False], seed=201), "val")
    assert not torch.allclose(other_history.logits[0], after_a[1][0])


def test_memory_none_ignores_history() -> None:
    module = _tiny_module("none")
    with torch.no_grad():
        module._reset("val")
        first = module.stream_step(_batch([1], [True], seed=1), "val").logits
        module.stream_step(_batch([1], [False], seed=2), "val")
        again = module.stream_step(_batch([1], [False], seed=1), "val").logits
    assert torch.equal(first, again)


def test_predict_step_adds_probabilities() -> None:
    module = _tiny_module("text+region")
    module.on_predict_epoch_start()
    with torch.no_grad():
        out = module.predict_step(_batch([4, 5], [True, True], seed=3), 0)
    assert out["scores"].shape == (2, 2, 3)
    assert ((out["scores"] > 0) & (out["scores"] < 1)).all()
    assert len(module.memories["predict"].caches["text"]) == 1  # the step was written


def test_attention_box_head_is_selectable() -> None:
    cfg = compose_config("train", ["model.head.kind=attention", "+model.head.num_heads=4"])
    module = DetectionModule(
        backbone=cfg.model.backbone, head=cfg.model.head, memory=cfg.memory, class_ids=[1, 2, 3]
    ).eval()
    assert type(module.model.head).__name__ == "AttentionRoIHead"
    module._reset("val")
    with torch.no_grad():
        out = module.stream_step(_batch([1], [True], seed=0), "val")
    assert out.logits.shape == (1, 2, 3)
    with pytest.raises(ValueError, match="model.head.kind"):
        DetectionModule(
            backbone=cfg.model.backbone, head={"kind": "mlp"}, memory=cfg.memory, class_ids=[1]
        )


def test_readout_groups_heads_gives_each_head_its_own_channel_group() -> None:
    """Section 3.3's group conv: `groups: heads` (the recipes) -> head h reads channel slice h."""
    readout = MemoryReadout(
        in_dim=64,
        out_dim=32,
        num_heads=4,
        kernel=3,
        stride=2,
        groups="heads",
        max_distance=2,
        query_time=2,
    )
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


def test_weight_decay_skips_biases_norms_position_tables_and_tokens() -> None:
    """`model.exclude_from_weight_decay` (on in the recipes): MeMViT's no-decay parameters."""
    cfg = compose_config("train", ["model.backbone.num_global_tokens=2"])
    module = DetectionModule(
        backbone=cfg.model.backbone,
        head=cfg.model.head,
        memory=cfg.memory,
        class_ids=[1, 2],
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.05),
        exclude_from_weight_decay=True,
    )
    optimizer = module.configure_optimizers()
    decay = {
        id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]
    }
    named = dict(module.named_parameters())
    trainable = {n for n, p in named.items() if p.requires_grad}
    assert {id(named[n]) for n in trainable} == set(decay)  # every trainable parameter, once
    zero = {n for n in trainable if decay[id(named[n])] == 0.0}
    for name in (
        "model.backbone.blocks.0.attn.qkv.bias",
        "model.backbone.blocks.0.norm1.weight",
        "model.backbone.blocks.0.attn.rel_pos_t",
        "model.backbone.blocks.0.attn.memory_readout.rel_pos_mem",
        "model.backbone.pos_encoding.class_token",
        "model.backbone.global_tokens",
    ):
        assert name in zero, name
    assert "model.backbone.blocks.0.attn.qkv.weight" not in zero
    assert "model.backbone.blocks.0.attn.memory_readout.proj_k.weight" not in zero
    for recipe in ("ava/tinymem16_12", "epic_kitchens/tinymem16_4", "breakfast/tinymem16_4"):
        assert compose_config("train", [f"experiment={recipe}"]).model.exclude_from_weight_decay

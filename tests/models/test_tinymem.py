"""Every memory type: plans, token counts per clip, compression, gradients, attention mass."""

from __future__ import annotations

import math

import pytest
import torch

from helpers.model import detection_module
from tinymem.config import compose_config
from tinymem.memory.plan import ConfigError, parse_memory_spec
from tinymem.models.heads import roi_pool
from tinymem.models.tinymem import TinyMem, build_backbone

FRAMES = 4  # the demo clip: 4 frames at 64 px


def _batch(video_ids: list[int], is_first: list[bool], seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    rows = len(video_ids)
    return {
        "video": torch.randn(rows, 3, FRAMES, 64, 64, generator=gen),
        "boxes": torch.tensor([[[0.1, 0.2, 0.6, 0.9], [0.5, 0.1, 0.9, 0.5]]]).repeat(rows, 1, 1),
        "box_mask": torch.tensor([[True, False]]).repeat(rows, 1),
        "box_scores": torch.tensor([[0.9, 0.5]]).repeat(rows, 1),
        "labels": torch.zeros(rows, 2, 3),
        "video_id": torch.tensor(video_ids),
        "is_first": torch.tensor(is_first),
        "valid": torch.ones(rows, dtype=torch.bool),
        "captions": [[f"clip {seed} row {r} t {t}" for t in range(FRAMES)] for r in range(rows)],
    }


def test_entry_token_counts_per_clip_for_every_type() -> None:
    module = detection_module(
        "memory=text", "memory.layers=[0,1,2,3]", "memory.plan=TRGV", "memory.n_region=8"
    )
    net = module.model.backbone
    assert net.num_global_tokens == 8  # region_token memory set the backbone's global tokens
    module._reset("val")
    with torch.no_grad():
        module.stream_step(_batch([1, 2], [True, True], seed=0), "val")
    caches = module.memories["val"].caches
    tokens = {name: tuple(cache.entries[-1][0].shape[1:]) for name, cache in caches.items()}
    kv_t, kv_h, kv_w = net.kv_grid(3)
    prefix = 1 + 8  # class token + global tokens
    assert tokens == {
        "text": (FRAMES, module.text_encoder.feature_dim),  # one EOT token per frame caption
        "region": (8, net.out_dim),  # RoI features padded to n_region
        "region_token": (8, net.block_width(3)),  # global tokens of the last block
        "vision@3": (prefix + kv_t * kv_h * kv_w, 2 * net.block_width(3)),  # keys and values
    }
    region_mask = caches["region"].entries[-1][1]
    assert region_mask[:, :1].all() and not region_mask[:, 1:].any()  # one real box per row


def test_region_memory_pools_the_chosen_block_or_the_head_features() -> None:
    """`memory.region_block`: RoIAlign over that block's output grid; null: the head's features."""
    batch = _batch([1, 2], [True, True], seed=0)
    for region_block in (None, 0):
        module = detection_module(
            "memory=region", f"memory.region_block={'null' if region_block is None else 0}"
        )
        model, net = module.model, module.model.backbone
        with torch.no_grad():
            out = model(batch["video"], batch["boxes"], batch["box_mask"])
            if region_block is None:
                assert out.region_features is out.box_features
                expected_width = net.out_dim
            else:
                encoded = net(batch["video"], grid_blocks=[0])
                grid, thw = encoded.grids[0]
                expected_width = net.block_width(0)
                assert grid.shape[1] == math.prod(thw)  # the grid, no prefix tokens
                expected = roi_pool(grid, thw, batch["boxes"], batch["box_mask"], (64, 64))
                torch.testing.assert_close(out.region_features, expected)
                assert out.region_features.shape[-1] != out.box_features.shape[-1]
            assert out.region_features.shape == (2, 2, expected_width)
            assert not out.region_features[:, 1].any()  # the masked box writes zeros
            module._reset("val")
            module.stream_step(batch, "val")
        entry, mask = module.memories["val"].caches["region"].entries[-1]
        assert entry.shape == (2, module.spec.n_region, expected_width)


def test_mvit16_vision_memory_is_much_larger_than_text_region() -> None:
    """Memory tokens per augmented block on mvit16 (meta device): vision >> text+region."""
    cfg = compose_config("train", ["model=mvit16", "data.num_frames=16", "data.crop_size=224"])
    per_block = {}
    for kind in ("vision", "text+region"):
        memory = compose_config("train", [f"memory={kind}"]).memory
        spec = parse_memory_spec(memory, depth=16)
        with torch.device("meta"):
            model = TinyMem(build_backbone(cfg.model.backbone), spec, {"text": 512, "region": 768})
        counts = model.memory_tokens({"text": 16, "region": spec.n_region})
        assert sorted(counts) == list(spec.layers)
        per_block[kind] = sum(after for _, after in counts.values()) / len(counts)
        if kind == "text+region":  # l=2 entries of 16 tokens, kernel 3 stride 2 -> 8 each
            assert set(counts.values()) == {(32, 16)}
        else:  # block 0: 8x7x7 keys -> 2x4x4 (+ class token); blocks 4..12: 8x7x7 too
            assert counts[0] == (2 * (1 + 8 * 7 * 7), 2 * (1 + 2 * 4 * 4))
    assert per_block["vision"] >= 5 * per_block["text+region"], per_block


def test_gradients_reach_readouts_and_region_tokens_not_caches_or_frozen_towers() -> None:
    module = detection_module(
        "memory=text", "memory.layers=[0,1,2,3]", "memory.plan=TVGR", "memory.n_region=8"
    )
    module.train()
    module._reset("train")
    module.stream_step(_batch([1, 2], [True, True], seed=0), "train")
    out = module.stream_step(_batch([1, 2], [False, False], seed=1), "train")
    out.logits.sum().backward()
    blocks = module.model.backbone.blocks
    text_readout, vision_readout = blocks[0].attn.memory_readout, blocks[1].attn.memory_readout
    region_readout = blocks[3].attn.memory_readout
    for param in (
        text_readout.proj_k.weight,
        text_readout.proj_v.weight,
        region_readout.proj_k.weight,
        vision_readout.compress_k.pool.weight,
        vision_readout.compress_v.pool.weight,
        module.model.backbone.global_tokens,
    ):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in module.text_encoder.parameters())
    for cache in module.memories["train"].caches.values():
        assert all(not tokens.requires_grad for tokens, _ in cache.entries)


@pytest.mark.parametrize("memory", ["text+region", "vision"])
def test_recorded_attention_mass_per_memory_entry(memory: str) -> None:
    module = detection_module(f"memory={memory}", "memory.length=3").eval()
    module.record_attention = True
    module._reset("val")
    masses = []
    with torch.no_grad():
        for step in range(3):
            out = module.stream_step(_batch([7], [step == 0], seed=step), "val")
            masses.append(out.memory_attention)
    kinds = set(module.spec.types)
    assert set(masses[0]) == kinds
    for kind in kinds:
        first, third = masses[0][kind], masses[2][kind]
        assert first.shape == (1, 3) and torch.equal(first, torch.zeros(1, 3))  # nothing yet
        assert (third[0, :2] > 0).all() and third[0, 2] == 0  # two past clips, third missing
        assert float(third.sum()) < 1.0  # the current clip's keys get the rest
    module.record_attention = False
    with torch.no_grad():
        assert module.stream_step(_batch([7], [False], seed=9), "val").memory_attention == {}


def test_region_token_count_conflict_names_both_keys() -> None:
    with pytest.raises(ConfigError, match="num_global_tokens=4 but memory.n_region=8"):
        detection_module("memory=region_token", "model.backbone.num_global_tokens=4")


def test_dynamic_inference_captions_come_from_the_clip_predictions() -> None:
    module = detection_module("memory=text+region").eval()
    module.inference_captions = "dynamic"
    module.descriptions = "synthetic"
    module._reset("val")
    with torch.no_grad():
        module.stream_step(_batch([3], [True], seed=0), "val")
    written = module.written_captions
    assert len(written) == 1 and len(written[0]) == FRAMES
    assert all(caption.startswith("a person ") for caption in written[0])
    module._reset("train")
    module.train()
    batch = _batch([3], [True], seed=0)
    module.stream_step(batch, "train")
    assert module.written_captions == batch["captions"]  # training always reads stored ones


def test_inspection_names_the_captions_of_the_attended_entries() -> None:
    from tinymem.memory.inspection import inspect_memory_attention

    module = detection_module("memory=text", "memory.length=2")
    batches = []
    for step in range(3):
        batch = _batch([4], [step == 0], seed=step)
        batch["clip_index"] = torch.tensor([902 + step])
        batch["video_name"] = ["vid"]
        batches.append(batch)
    steps = inspect_memory_attention(module, batches)
    assert [s.second for s in steps] == [902, 903, 904]
    assert steps[0].most_attended("text") is None  # empty memory at the first clip
    last = steps[2]
    assert [e.second for e in last.entries] == [903, 902]
    assert last.entries[1].captions == batches[0]["captions"][0]
    assert last.most_attended("text") in last.entries
    assert module.record_attention is False  # restored


def test_region_memory_stores_roi_features_with_the_attention_head() -> None:
    """Section 3.2: region memory is the boxes' RoI features, whichever head scores them."""
    module = detection_module(
        "memory=region", "model.head.kind=attention", "+model.head.num_heads=4"
    )
    model, batch = module.model, _batch([1, 2], [True, True], seed=0)
    with torch.no_grad():
        out = model(batch["video"], batch["boxes"], batch["box_mask"])
        encoded = model.backbone(batch["video"])
        grid = encoded.tokens[:, -math.prod(encoded.thw) :]  # [B, THW, C]
        roi = roi_pool(grid, encoded.thw, batch["boxes"], batch["box_mask"], (64, 64))
    torch.testing.assert_close(out.region_features, roi)
    assert not torch.allclose(out.box_features, roi)  # the head's attended features differ


def test_per_layer_region_tokens_cache_each_blocks_own_global_tokens() -> None:
    """Section 3.2, `memory.source_block=layer` (the EK-100/Breakfast recipes): each G block
    writes the global tokens its own layer outputs and reads them back."""
    module = detection_module(
        "memory=region_token", "memory.source_block=layer", "memory.layer_fraction=1.0"
    )
    net, batch = module.model.backbone, _batch([1, 2], [True, True], seed=0)
    blocks = list(module.spec.layers)
    assert module.spec.plan == "G" * len(blocks) and len(blocks) > 1
    module._reset("val")
    with torch.no_grad():
        module.stream_step(batch, "val")
        captured = net(batch["video"], capture_blocks=blocks).captured  # block -> [B, G, C]
    caches = module.memories["val"].caches
    assert set(caches) == {f"region_token@{block}" for block in blocks}
    for block in blocks:
        entry, mask = caches[f"region_token@{block}"].entries[-1]
        assert entry.shape == (2, module.spec.n_region, net.block_width(block))
        torch.testing.assert_close(entry, captured[block].float())
        assert mask.all()
    for recipe in ("epic_kitchens/tinymem16_4", "breakfast/tinymem16_4", "ava/tinymem16_6_rtoken"):
        assert compose_config("train", [f"experiment={recipe}"]).memory.source_block == "layer"

"""The VideoMAE-style video ViT: sizes, the VideoMAE computation, memory attention, loading."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from helpers.model import memory_outputs, written_cache
from tinymem.config import compose_config
from tinymem.lit.detection import DetectionModule
from tinymem.memory.cache import MemoryRead
from tinymem.memory.readout import MemoryKV
from tinymem.models.checkpoints import CheckpointError
from tinymem.models.tinymem import build_backbone
from tinymem.models.vit import VideoViT, load_videomae, sinusoid_table

TINY = dict(num_frames=4, crop_size=32, depth=2, embed_dim=32, num_heads=2)  # 2x2x2 tokens
KINETICS_CLASSES = 400
# Exact parameter counts of the backbones (no classifier), checked below.
VIT_S_PARAMS = 21_879_936
VIT_B_PARAMS = 86_227_200


def _clip(batch: int = 2, seed: int = 0, frames: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed))


def _memory_read(batch: int, dim: int, seed: int = 0, entries: int = 2) -> MemoryRead:
    gen = torch.Generator().manual_seed(seed)
    return MemoryRead(
        tokens=torch.randn(batch, entries, 4, dim, generator=gen),
        mask=torch.ones(batch, entries, 4, dtype=torch.bool),
        distance=torch.arange(1, entries + 1),
    )


@pytest.mark.parametrize(
    "option,dim,params", [("vit_s", 384, VIT_S_PARAMS), ("vit_b", 768, VIT_B_PARAMS)]
)
def test_full_size_configs_build_and_run_on_meta(option: str, dim: int, params: int) -> None:
    cfg = compose_config("train", [f"model={option}", "data.num_frames=16", "data.crop_size=224"])
    backbone_cfg = OmegaConf.to_container(cfg.model.backbone, resolve=True)
    with torch.device("meta"):
        net = build_backbone(backbone_cfg)
        out = net(torch.empty(2, 3, 16, 224, 224))
    assert isinstance(net, VideoViT) and len(net.blocks) == 12 and net.out_dim == dim
    assert out.tokens.shape == (2, 8 * 14 * 14, dim) and out.thw == (8, 14, 14)
    assert sum(p.numel() for p in net.parameters()) == params
    # With VideoMAE's Kinetics-400 classifier: 22.0M (ViT-S) and 86.5M (ViT-B).
    classifier = dim * KINETICS_CLASSES + KINETICS_CLASSES
    expected_millions = {"vit_s": 22.0, "vit_b": 86.5}[option]
    assert round((params + classifier) / 1e6, 1) == expected_millions


def test_sinusoid_table_is_videomae_formula() -> None:
    positions, dim = 10, 6
    exponent = np.array([2 * (c // 2) / dim for c in range(dim)])
    angle = np.arange(positions)[:, None] / np.power(10000.0, exponent)[None]
    reference = np.where(np.arange(dim) % 2 == 0, np.sin(angle), np.cos(angle))
    table = sinusoid_table(positions, dim)
    assert table.shape == (1, positions, dim) and table.dtype == torch.float32
    assert torch.equal(table[0], torch.from_numpy(reference).float())
    net = VideoViT(**TINY)
    assert "pos_embed" not in net.state_dict()  # fixed, recomputed, never learned
    assert not any(name == "pos_embed" for name, _ in net.named_parameters())


def _videomae_reference(net: VideoViT, video: torch.Tensor) -> torch.Tensor:
    """VideoMAE's forward written out step by step (qkv with q/v bias, softmax attention)."""
    x = net.patch_embed.proj(video).flatten(2).transpose(1, 2) + net.pos_embed
    for block in net.blocks:
        attn = block.attn
        batch, tokens, dim = x.shape
        h = block.norm1(x)
        bias = torch.cat([attn.q_bias, torch.zeros(dim), attn.v_bias])
        qkv = (h @ attn.qkv.weight.T + bias).reshape(batch, tokens, 3, attn.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        weights = ((q / math.sqrt(attn.head_dim)) @ k.transpose(-2, -1)).softmax(-1)
        h = (weights @ v).transpose(1, 2).reshape(batch, tokens, dim)
        x = x + attn.proj(h)
        x = x + block.mlp.fc2(torch.nn.functional.gelu(block.mlp.fc1(block.norm2(x))))
    return net.norm(x)


def test_tiny_forward_is_the_videomae_computation() -> None:
    torch.manual_seed(0)
    net = VideoViT(**TINY).eval()
    for block in net.blocks:  # VideoMAE initialises q/v biases to zero; make them count
        torch.nn.init.normal_(block.attn.q_bias)
        torch.nn.init.normal_(block.attn.v_bias)
    clip = _clip()
    with torch.no_grad():
        out = net(clip)
        reference = _videomae_reference(net, clip)
    assert out.tokens.shape == (2, 8, 32) and out.thw == (2, 2, 2) and out.captured == {}
    torch.testing.assert_close(out.tokens, reference, rtol=1e-5, atol=1e-5)


def test_no_memory_adds_no_op_even_with_readouts_attached() -> None:
    torch.manual_seed(0)
    plain = VideoViT(**TINY).eval()
    with_readout = VideoViT(**TINY).eval()
    with_readout.load_state_dict(plain.state_dict())
    with_readout.attach_memory(1, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    clip = _clip()
    with torch.no_grad():
        assert torch.equal(plain(clip).tokens, with_readout(clip).tokens)
        assert torch.equal(plain(clip).tokens, with_readout(clip, {}).tokens)


def test_memory_attention_matches_reference_with_rel_pos_only_on_memory_columns() -> None:
    """Logits: [q.mem_k * scale + rel (grid rows only) | q.k * scale], invalid memory removed."""
    torch.manual_seed(0)
    prefix = 2
    net = VideoViT(**TINY, num_global_tokens=prefix).eval()
    net.attach_memory(1, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    attn = net.blocks[1].attn
    readout = attn.memory_readout
    torch.nn.init.normal_(readout.rel_pos_mem)  # a clearly visible relative-position term
    read = _memory_read(batch=2, dim=16)
    read.mask[1, 0] = False  # row 1: the first entry is invalid, the second is valid
    x = torch.randn(2, prefix + 8, 32)
    with torch.no_grad():
        kv = readout(read)
        assert kv.key.shape == (2, 2, 2 * 2, 16) and kv.value.shape == (2, 2, 4, 16)
        assert kv.mask.tolist() == [[True] * 4, [False, False, True, True]]
        assert kv.distance.tolist() == [1, 1, 2, 2]
        out = attn(x, net.thw, prefix, kv)

        batch, tokens, dim = x.shape
        qkv = torch.nn.functional.linear(
            x, attn.qkv.weight, torch.cat([attn.q_bias, torch.zeros(dim), attn.v_bias])
        )
        q, k, v = qkv.reshape(batch, tokens, 3, 2, 16).permute(2, 0, 3, 1, 4)
        scale = 16**-0.5
        logits_mem = scale * q @ kv.key.transpose(-2, -1)  # [B, heads, N, M]
        query_time = torch.arange(8) // 4  # grid queries in t-major order (2x2x2)
        table = readout.rel_pos_mem[kv.distance - 1][:, query_time]  # [M, 8, head_dim]
        rel = torch.einsum("bhnc,mnc->bhnm", q[:, :, prefix:], table)
        logits_mem[:, :, prefix:] += rel  # the global-token rows get no relative position
        logits_mem = logits_mem.masked_fill(~kv.mask[:, None, None], float("-inf"))
        logits = torch.cat([logits_mem, scale * q @ k.transpose(-2, -1)], dim=-1)
        mixed = logits.softmax(-1) @ torch.cat([kv.value, v], dim=2)
        reference = attn.proj(mixed.transpose(1, 2).reshape(batch, tokens, dim))
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)


def test_fully_masked_memory_equals_no_memory_bit_for_bit() -> None:
    torch.manual_seed(0)
    net = VideoViT(**TINY, num_global_tokens=2).eval()
    net.attach_memory(0, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    cache = written_cache([0, 1], [0, 3], [False, True])  # row 1: new video
    clip = _clip()
    plain, mixed, all_masked = memory_outputs(net, 0, cache, clip)
    assert torch.equal(all_masked, plain)
    assert torch.equal(mixed[1], plain[1])  # the row that started a new video sees nothing
    assert not torch.allclose(mixed[0], plain[0])  # the continuing row reads its memory


def test_global_tokens_are_captured_at_requested_blocks() -> None:
    torch.manual_seed(0)
    net = VideoViT(**TINY, num_global_tokens=3).eval()
    with torch.no_grad():
        out = net(_clip(), capture_blocks=[0, 1])
    assert out.tokens.shape == (2, 3 + 8, 32)
    assert sorted(out.captured) == [0, 1]
    assert all(t.shape == (2, 3, 32) for t in out.captured.values())
    assert not torch.equal(out.captured[0], out.captured[1])
    torch.testing.assert_close(net.norm(out.captured[1]), out.tokens[:, :3])  # last block, normed


def test_bad_blocks_are_named() -> None:
    net = VideoViT(**TINY)
    with pytest.raises(ValueError, match="num_global_tokens > 0"):
        net(_clip(), capture_blocks=[1])
    with pytest.raises(ValueError, match="block 1, which has no memory readout"):
        net(_clip(), {1: _memory_read(2, 16)})
    with pytest.raises(ValueError, match=r"capture_blocks: \[5\]"):
        VideoViT(**TINY, num_global_tokens=1)(_clip(), capture_blocks=[5])


@pytest.mark.parametrize(
    "frames,size,hint", [(5, 32, "5 frames are not a multiple"), (4, 48, ""), (8, 32, "")]
)
def test_wrong_input_shape_names_the_expected_shape(frames: int, size: int, hint: str) -> None:
    net = VideoViT(**TINY)
    with pytest.raises(ValueError, match=r"expected a clip of shape \[B, 3, 4, 32, 32\]") as err:
        net(_clip(frames=frames, size=size))
    assert f"got [2, 3, {frames}, {size}, {size}]" in str(err.value)
    assert hint in str(err.value)


def test_bad_build_sizes_name_the_key() -> None:
    with pytest.raises(ValueError, match="num_frames=5 must be a multiple of tubelet_size=2"):
        VideoViT(**dict(TINY, num_frames=5))
    with pytest.raises(ValueError, match="crop_size=40 must be a multiple of patch_size=16"):
        VideoViT(**dict(TINY, crop_size=40))
    with pytest.raises(ValueError, match="num_heads=3 must divide embed_dim=32"):
        VideoViT(**dict(TINY, num_heads=3))


def _videomae_state(depth: int = 2, dim: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    """A VideoMAE fine-tuning state dict (mean pooling, Kinetics head), built from its names."""
    gen = torch.Generator().manual_seed(seed)
    hidden = 4 * dim

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    state = {"patch_embed.proj.weight": rand(dim, 3, 2, 16, 16), "patch_embed.proj.bias": rand(dim)}
    for n in range(depth):
        state |= {
            f"blocks.{n}.norm1.weight": rand(dim),
            f"blocks.{n}.norm1.bias": rand(dim),
            f"blocks.{n}.attn.q_bias": rand(dim),
            f"blocks.{n}.attn.v_bias": rand(dim),
            f"blocks.{n}.attn.qkv.weight": rand(3 * dim, dim),
            f"blocks.{n}.attn.proj.weight": rand(dim, dim),
            f"blocks.{n}.attn.proj.bias": rand(dim),
            f"blocks.{n}.norm2.weight": rand(dim),
            f"blocks.{n}.norm2.bias": rand(dim),
            f"blocks.{n}.mlp.fc1.weight": rand(hidden, dim),
            f"blocks.{n}.mlp.fc1.bias": rand(hidden),
            f"blocks.{n}.mlp.fc2.weight": rand(dim, hidden),
            f"blocks.{n}.mlp.fc2.bias": rand(dim),
        }
    state |= {
        "fc_norm.weight": rand(dim),
        "fc_norm.bias": rand(dim),
        "head.weight": rand(KINETICS_CLASSES, dim),
        "head.bias": rand(KINETICS_CLASSES),
    }
    return state


def test_videomae_checkpoint_loads_strictly_by_name(tmp_path: Path) -> None:
    state = _videomae_state()
    state["pos_embed"] = sinusoid_table(8, 32)  # saved by some exports; equals the fixed table
    net = VideoViT(**TINY, num_global_tokens=2)
    net.attach_memory(1, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    readout_before = {k: v.clone() for k, v in net.state_dict().items() if "memory_readout" in k}
    load_videomae(net, state)
    loaded = net.state_dict()
    used = set()
    for key, value in state.items():
        if key in ("head.weight", "head.bias", "pos_embed"):
            continue  # documented as dropped
        ours = {"fc_norm.weight": "norm.weight", "fc_norm.bias": "norm.bias"}.get(key, key)
        assert torch.equal(loaded[ours], value), key
        used.add(ours)
    kept = {k for k in loaded if k == "global_tokens" or "memory_readout" in k}
    assert used | kept == set(loaded)  # every model tensor came from the checkpoint or is ours
    assert all(torch.equal(loaded[k], v) for k, v in readout_before.items())

    # The same through a file as VideoMAE saves it ({"model": ...}) and the `pretrained` key,
    # and a checkpoint without mean pooling (`norm.*` instead of `fc_norm.*`).
    state = _videomae_state(seed=1)
    for part in ("weight", "bias"):
        state[f"norm.{part}"] = state.pop(f"fc_norm.{part}")
    path = tmp_path / "videomae.pth"
    torch.save({"model": state, "epoch": 30}, path)
    net = VideoViT(**TINY, pretrained=str(path))
    assert torch.equal(net.norm.weight, state["norm.weight"])
    assert torch.equal(net.blocks[1].attn.q_bias, state["blocks.1.attn.q_bias"])


def test_videomae_loader_lists_missing_and_unexpected_keys() -> None:
    state = _videomae_state()
    del state["blocks.1.attn.v_bias"]
    del state["blocks.0.mlp.fc2.bias"]
    state["blocks.0.gamma_1"] = torch.ones(32)  # layer scale is not part of this layout
    net = VideoViT(**TINY)
    before = net.blocks[0].attn.qkv.weight.clone()
    with pytest.raises(CheckpointError) as err:
        load_videomae(net, state)
    message = str(err.value)
    assert "missing keys [blocks.0.mlp.fc2.bias, blocks.1.attn.v_bias]" in message
    assert "unexpected keys [blocks.0.gamma_1]" in message
    assert torch.equal(net.blocks[0].attn.qkv.weight, before)  # nothing partially loaded


def test_videomae_loader_rejects_other_layouts() -> None:
    net = VideoViT(**TINY)
    learned = _videomae_state()
    learned["pos_embed"] = torch.randn(1, 8, 32)
    with pytest.raises(CheckpointError, match="learned position embeddings"):
        load_videomae(net, learned)
    other_size = _videomae_state()
    other_size["pos_embed"] = sinusoid_table(16, 32)
    with pytest.raises(CheckpointError, match=r"pos_embed has shape \(1, 16, 32\)"):
        load_videomae(net, other_size)
    both = _videomae_state()
    both["norm.weight"], both["norm.bias"] = torch.ones(32), torch.zeros(32)
    with pytest.raises(CheckpointError, match="both fc_norm"):
        load_videomae(net, both)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_videomae(net, _videomae_state(dim=64))


def test_activation_checkpointing_gives_the_same_values_and_gradients() -> None:
    torch.manual_seed(0)
    net = VideoViT(**TINY, num_global_tokens=1).train()
    net.attach_memory(0, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    clip, read = _clip(), _memory_read(2, 16)
    results = []
    for recompute in (False, True):
        net.zero_grad()
        net.checkpoint_activations = recompute
        out = net(clip, {0: read}).tokens
        out.square().mean().backward()
        results.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    (out_a, grads_a), (out_b, grads_b) = results
    torch.testing.assert_close(out_a, out_b)
    for grad_a, grad_b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(grad_a, grad_b)


def test_memory_kv_in_another_dtype_is_cast() -> None:
    torch.manual_seed(0)
    net = VideoViT(**TINY).eval()
    net.attach_memory(0, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(_clip(), {0: _memory_read(2, 16)})
    assert out.tokens.shape == (2, 8, 32) and torch.isfinite(out.tokens.float()).all()


def _batch(video_ids: list[int], is_first: list[bool], seed: int) -> dict:
    batch = len(video_ids)
    return {
        "video": torch.randn(batch, 3, 4, 64, 64, generator=torch.Generator().manual_seed(seed)),
        "boxes": torch.tensor([[[0.1, 0.2, 0.6, 0.9], [0.5, 0.1, 0.9, 0.5]]]).repeat(batch, 1, 1),
        "box_mask": torch.ones(batch, 2, dtype=torch.bool),
        "video_id": torch.tensor(video_ids),
        "is_first": torch.tensor(is_first),
        "valid": torch.ones(batch, dtype=torch.bool),
        "captions": [[f"caption {seed} {row} {t}" for t in range(4)] for row in range(batch)],
    }


def test_detection_module_streams_with_vit_and_text_region_memory() -> None:
    cfg = compose_config(
        "train",
        [
            "model=vit_s",
            "model.backbone.depth=4",
            "model.backbone.embed_dim=32",
            "model.backbone.num_heads=2",
            "memory=text+region",
        ],
    )
    torch.manual_seed(0)
    module = DetectionModule(
        backbone=cfg.model.backbone, head=cfg.model.head, memory=cfg.memory, class_ids=[1, 2, 3]
    ).eval()
    backbone = module.model.backbone
    assert isinstance(backbone, VideoViT) and backbone.thw == (2, 4, 4)
    assert module.spec.layers == (0, 2) and module.spec.plan == "TR"
    assert all(backbone.blocks[i].attn.memory_readout is not None for i in (0, 2))
    with torch.no_grad():
        module._reset("val")
        first = module.stream_step(_batch([1, 2], [True, True], seed=1), "val")
        second = module.stream_step(_batch([1, 2], [False, True], seed=2), "val")
        module._reset("val")
        fresh = module.stream_step(_batch([1, 2], [True, True], seed=2), "val")
    assert first.logits.shape == (2, 2, 3) and first.box_features.shape == (2, 2, 32)
    assert not torch.allclose(second.logits[0], fresh.logits[0])  # row 0 reads clip 1
    assert torch.equal(second.logits[1], fresh.logits[1])  # row 1 started a new video
    assert len(module.memories["val"].caches["region"]) == 1


def test_attach_memory_builds_a_readout_of_the_block_width() -> None:
    net = VideoViT(**TINY)
    net.attach_memory(0, in_dim=16, kernel=1, stride=1, groups=1, max_distance=3)
    kv = net.blocks[0].attn.memory_readout(_memory_read(2, 16, entries=3))
    assert isinstance(kv, MemoryKV) and kv.key.shape == (2, 2, 3 * 4, 16)

"""MViTv2 backbone: both layouts, checkpoints, full-size shapes and counts, input checks, tokens."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
from torch import Tensor

from helpers.model import TINY_MVIT, written_cache
from tinymem.bench import measure_backbone
from tinymem.config import compose_config
from tinymem.layers import memory_attention
from tinymem.layers.memory_attention import MemoryKV, attend_with_memory
from tinymem.layers.rel_pos import GridRelPos, memory_rel_pos
from tinymem.lit.detection import DetectionModule
from tinymem.memory.cache import MemoryRead
from tinymem.models import attention as mvit_attention
from tinymem.models import vit
from tinymem.models.checkpoints import CheckpointError, convert_slowfast_mvit, load_strict
from tinymem.models.mvit import MViTBackbone, block_setting
from tinymem.models.tinymem import build_backbone

MVIT24 = dict(depth=24, embed_dim=96, num_heads=1, stage_starts=[2, 5, 21], kv_stride=[1, 8, 8])
CLIP = (3, 4, 64, 64)


def _tiny(**kwargs: object) -> MViTBackbone:
    return MViTBackbone(num_frames=4, crop_size=64, **{**TINY_MVIT, **kwargs}).eval()


def _memory(dim: int = 16) -> MemoryRead:
    return written_cache([0], [0], [False], dim).read(length=2, stride=1)


# --------------------------------------------------------------------------- SlowFast layout
def _slowfast_state(
    frames: int, size: int, pool_first: bool, num_classes: int, **arch: object
) -> dict[str, Tensor]:
    """A SlowFast/MeMViT MViTv2 state dict (their key names and shapes), random values."""
    setting = block_setting(**arch)  # type: ignore[arg-type]
    dim0 = setting[0].input_channels
    state = {
        "patch_embed.proj.weight": torch.randn(dim0, 3, 3, 7, 7),
        "patch_embed.proj.bias": torch.randn(dim0),
        "cls_token": torch.randn(1, 1, dim0),
    }
    t, hw = frames // 2, size // 4
    for i, cfg in enumerate(setting):
        dim, out, heads = cfg.input_channels, cfg.output_channels, cfg.num_heads
        head_dim = out // heads
        conv_dim = (dim if pool_first else out) // heads
        blk = f"blocks.{i}"
        state[f"{blk}.norm1.weight"], state[f"{blk}.norm1.bias"] = torch.randn(2, dim)
        if pool_first:
            for name in "qkv":
                state[f"{blk}.attn.{name}.weight"] = torch.randn(out, dim)
                state[f"{blk}.attn.{name}.bias"] = torch.randn(out)
        else:
            state[f"{blk}.attn.qkv.weight"] = torch.randn(3 * out, dim)
            state[f"{blk}.attn.qkv.bias"] = torch.randn(3 * out)
        state[f"{blk}.attn.proj.weight"] = torch.randn(out, out)
        state[f"{blk}.attn.proj.bias"] = torch.randn(out)
        for name in "qkv":
            state[f"{blk}.attn.pool_{name}.weight"] = torch.randn(conv_dim, 1, 3, 3, 3)
            state[f"{blk}.attn.norm_{name}.weight"] = torch.randn(conv_dim)
            state[f"{blk}.attn.norm_{name}.bias"] = torch.randn(conv_dim)
        q_hw, kv_hw = hw // cfg.stride_q[1], hw // cfg.stride_kv[1]
        state[f"{blk}.attn.rel_pos_h"] = torch.randn(2 * max(q_hw, kv_hw) - 1, head_dim)
        state[f"{blk}.attn.rel_pos_w"] = torch.randn(2 * max(q_hw, kv_hw) - 1, head_dim)
        state[f"{blk}.attn.rel_pos_t"] = torch.randn(2 * t - 1, head_dim)
        state[f"{blk}.norm2.weight"], state[f"{blk}.norm2.bias"] = torch.randn(2, out)
        state[f"{blk}.mlp.fc1.weight"] = torch.randn(4 * out, out)
        state[f"{blk}.mlp.fc1.bias"] = torch.randn(4 * out)
        state[f"{blk}.mlp.fc2.weight"] = torch.randn(out, 4 * out)
        state[f"{blk}.mlp.fc2.bias"] = torch.randn(out)
        if dim != out:
            state[f"{blk}.proj.weight"] = torch.randn(out, dim)
            state[f"{blk}.proj.bias"] = torch.randn(out)
        hw = q_hw
    last = setting[-1].output_channels
    state["norm.weight"], state["norm.bias"] = torch.randn(2, last)
    state["head.projection.weight"] = torch.randn(num_classes, last)
    state["head.projection.bias"] = torch.randn(num_classes)
    return state


@pytest.mark.parametrize("pool_first", [False, True])
def test_slowfast_state_dict_converts_and_loads_strictly(pool_first: bool) -> None:
    state = _slowfast_state(4, 64, pool_first, num_classes=5, **TINY_MVIT)
    net = _tiny(pool_first=pool_first, num_classes=5)
    converted = convert_slowfast_mvit(state)
    assert len(converted) == len(state)  # every key is used, none merged
    load_strict(net, converted, "slowfast")  # strict: nothing missing, nothing unexpected
    assert torch.equal(net.pos_encoding.class_token, state["cls_token"].reshape(-1))
    norm_q = net.blocks[1].attn.pool_q.norm_act[0]
    assert torch.equal(norm_q.bias, state["blocks.1.attn.norm_q.bias"])
    assert torch.equal(net.blocks[1].mlp[3].weight, state["blocks.1.mlp.fc2.weight"])
    assert torch.equal(net.head[1].weight, state["head.projection.weight"])
    with torch.no_grad():
        assert net(torch.randn(1, *CLIP)).logits.shape == (1, 5)


def test_full_size_slowfast_layout_matches_mvit24_pool_first() -> None:
    state = _slowfast_state(32, 224, True, num_classes=400, **MVIT24)
    with torch.device("meta"):
        net = MViTBackbone(num_frames=32, crop_size=224, pool_first=True, num_classes=400, **MVIT24)
    mine = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in convert_slowfast_mvit(state).items()} == mine


def test_pretrained_path_reads_slowfast_checkpoints_and_drops_memvit_memory(
    tmp_path: Path,
) -> None:
    state = _slowfast_state(4, 64, True, num_classes=80, **TINY_MVIT)
    state["blocks.0.attn.compress_k.weight"] = torch.randn(16, 1, 7, 3, 3)
    state["blocks.0.attn.norm_compress_k.weight"] = torch.randn(16)
    state["blocks.0.attn.rel_pos_mem_t"] = torch.randn(11, 32)
    path = tmp_path / "memvit.pyth"
    torch.save({"epoch": 30, "model_state": state}, path)
    net = _tiny(pool_first=True, pretrained=str(path))  # no classifier: the AVA head is dropped
    assert torch.equal(net.conv_proj.weight, state["patch_embed.proj.weight"])
    with pytest.raises(CheckpointError, match="pool_first=true"):
        _tiny(pool_first=False, pretrained=str(path))


def test_pretrained_path_missing_keys_are_listed(tmp_path: Path) -> None:
    source = _tiny(num_classes=3)
    state = source.state_dict()
    del state["blocks.2.attn.rel_pos_t"], state["norm.bias"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        _tiny(num_classes=3, pretrained=str(path))
    message = str(err.value)
    assert str(path) in message
    assert "missing keys [blocks.2.attn.rel_pos_t, norm.bias]" in message
    assert "unexpected keys [extra.weight]" in message


def _no_network(*args: object, **kwargs: object) -> socket.socket:
    raise AssertionError("tinymem tried to open a network connection")


def test_kinetics400_without_a_cached_copy_never_downloads_and_hints_a_local_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(socket, "create_connection", _no_network)
    with pytest.raises(CheckpointError) as err:
        _tiny(pretrained="kinetics400")
    message = str(err.value)
    assert "model.backbone.pretrained=/path/to/mvit_v2_s-ae3be167.pth" in message
    assert "nothing is downloaded" in message


def test_kinetics400_uses_the_hub_cache_without_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(socket, "create_connection", _no_network)
    source = _tiny(num_classes=400)
    (tmp_path / "checkpoints").mkdir()
    torch.save(source.state_dict(), tmp_path / "checkpoints" / "mvit_v2_s-ae3be167.pth")
    net = _tiny(num_classes=400, pretrained="kinetics400")
    assert torch.equal(net.head[1].weight, source.head[1].weight)


# --------------------------------------------------------------------------- pool-first layout
def test_pool_first_layout_shapes() -> None:
    torch.manual_seed(0)
    plain, first = _tiny(), _tiny(pool_first=True)
    attn = first.blocks[1].attn  # 32 -> 64 channels, 2 heads
    assert attn.pool_q.pool.in_channels == 32 // 2  # pooled at the input width, per head
    assert attn.q.in_features == 32 and attn.q.out_features == 64
    assert not hasattr(attn, "qkv")
    assert plain.blocks[1].attn.pool_q.pool.in_channels == 64 // 2
    clip = torch.randn(2, *CLIP)
    with torch.no_grad():
        a, b = plain(clip), first(clip)
    assert a.tokens.shape == b.tokens.shape == (2, 1 + 2 * 8 * 8, 64)
    assert a.thw == b.thw == (2, 8, 8)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_pool_first_memory_masking(attention: str) -> None:
    torch.manual_seed(0)
    net = _tiny(pool_first=True, attention=attention)
    net.attach_memory(1, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    clip = torch.randn(1, *CLIP)
    read = _memory()
    masked = MemoryRead(read.tokens, torch.zeros_like(read.mask), read.distance)
    with torch.no_grad():
        plain = net(clip).tokens
        with_memory = net(clip, {1: read}).tokens
        all_masked = net(clip, {1: masked}).tokens
    assert with_memory.shape == plain.shape
    assert not torch.allclose(plain, with_memory)
    torch.testing.assert_close(plain, all_masked, rtol=0, atol=1e-5)


def test_eager_and_sdpa_agree_with_memory_and_global_tokens() -> None:
    torch.manual_seed(0)
    eager = _tiny(attention="eager", num_global_tokens=3)
    eager.attach_memory(2, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    sdpa = _tiny(attention="sdpa", num_global_tokens=3)
    sdpa.attach_memory(2, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    sdpa.load_state_dict(eager.state_dict())
    clip, read = torch.randn(2, *CLIP), _memory()
    read = MemoryRead(read.tokens.repeat(2, 1, 1, 1), read.mask.repeat(2, 1, 1), read.distance)
    read.mask[1, 0] = False  # row 1 lost its newest entry (another video)
    with torch.no_grad():
        a, b = eager(clip, {2: read}), sdpa(clip, {2: read})
    torch.testing.assert_close(a.tokens, b.tokens, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["text", "text_frame_time", "vision"])
def test_eager_and_sdpa_agree_with_several_memory_entries(kind: str) -> None:
    """The fused path folds the memory position term per entry: it must match eager exactly."""
    torch.manual_seed(0)
    block, distance = 2, torch.tensor([2, 4, 6])  # three entries, stride 2
    nets = {}
    for attention in ("eager", "sdpa"):
        net = _tiny(attention=attention, num_global_tokens=2)
        if kind == "vision":
            net.attach_vision_memory(block, kernel=(3, 3, 3), stride=(2, 2, 2), max_distance=6)
        else:
            frame_time = kind == "text_frame_time"  # one table row per (entry, frame slot)
            net.attach_memory(
                block, 16, kernel=3, stride=2, groups=1, max_distance=6, frame_time=frame_time
            )
        nets[attention] = net
    with torch.no_grad():  # large, distinct per-entry terms so a mix-up would show
        nets["eager"].blocks[block].attn.memory_readout.rel_pos_mem.normal_(std=1.0)
    nets["sdpa"].load_state_dict(nets["eager"].state_dict())
    if kind == "vision":
        grid = nets["eager"].kv_grid(block)
        tokens = nets["eager"].num_prefix_tokens + grid[0] * grid[1] * grid[2]
        width = 2 * nets["eager"].block_setting[block].output_channels
    else:
        tokens, width = 5, 16
    read = MemoryRead(
        tokens=torch.randn(2, 3, tokens, width),
        mask=torch.ones(2, 3, tokens, dtype=torch.bool),
        distance=distance,
    )
    read.mask[1, 2] = False  # row 1 lost its oldest entry
    clip = torch.randn(2, *CLIP)
    with torch.no_grad():
        a, b = nets["eager"](clip, {block: read}), nets["sdpa"](clip, {block: read})
        plain = nets["eager"](clip)
    assert not torch.allclose(a.tokens, plain.tokens, atol=1e-3)
    torch.testing.assert_close(a.tokens, b.tokens, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- full size (meta)
@pytest.mark.parametrize(
    "model,frames,params,grid",
    [("mvit16", 16, 34_537_744, (8, 7, 7)), ("mvit24", 32, 51_230_128, (16, 7, 7))],
)
def test_full_size_configs_build_forward_and_count_parameters(
    model: str, frames: int, params: int, grid: tuple[int, int, int]
) -> None:
    cfg = compose_config(
        "train",
        [
            f"model={model}",
            f"model.backbone.num_frames={frames}",
            "model.backbone.crop_size=224",
            "model.backbone.num_classes=400",
        ],
    )
    with torch.device("meta"):
        net = build_backbone(cfg.model.backbone)
        out = net(torch.empty(2, 3, frames, 224, 224))
    # mvit16: torchvision's mvit_v2_s count; mvit24: SlowFast's MViTv2-B 32x3 (51.2M)
    assert sum(p.numel() for p in net.parameters()) == params
    assert out.thw == grid
    assert out.tokens.shape == (2, 1 + grid[0] * grid[1] * grid[2], 768)
    assert out.logits is not None and out.logits.shape == (2, 400)
    assert [b.attn.num_heads for b in net.blocks][-1] == 8


def test_full_size_mvit24_global_tokens_on_meta() -> None:
    with torch.device("meta"):
        net = MViTBackbone(num_frames=32, crop_size=224, num_global_tokens=16, **MVIT24)
        out = net(torch.empty(1, 3, 32, 224, 224), capture_blocks=(0, 2, 23))
    assert {k: tuple(v.shape) for k, v in out.captured.items()} == {
        0: (1, 16, 96),
        2: (1, 16, 192),
        23: (1, 16, 768),
    }
    assert out.tokens.shape == (1, 1 + 16 + 16 * 7 * 7, 768)


# --------------------------------------------------------------------------- input checks
@pytest.mark.parametrize(
    "shape,note",
    [
        ((1, 3, 3, 64, 64), "temporal patch stride 2"),
        ((1, 3, 6, 64, 64), ""),
        ((1, 3, 4, 64, 48), ""),
        ((3, 4, 64, 64), ""),
    ],
)
def test_wrong_input_shape_names_the_expected_shape(shape: tuple, note: str) -> None:
    with pytest.raises(ValueError) as err:
        _tiny()(torch.zeros(shape))
    message = str(err.value)
    assert "[B, 3, 4, 64, 64]" in message and str(list(shape)) in message
    assert note in message


def test_model_sizes_not_divisible_by_the_patch_stride_fail_at_build() -> None:
    with pytest.raises(ValueError, match="num_frames=5 is not divisible by the patch stride 2"):
        MViTBackbone(num_frames=5, crop_size=64, **TINY_MVIT)
    with pytest.raises(ValueError, match="crop_size=66"):
        MViTBackbone(num_frames=4, crop_size=66, **TINY_MVIT)


# --------------------------------------------------------------------------- global tokens
def test_global_tokens_are_captured_and_never_pooled() -> None:
    torch.manual_seed(0)
    net = _tiny(num_global_tokens=5)
    lengths = []
    for block in net.blocks:
        block.register_forward_hook(lambda m, args, out: lengths.append((out[0].shape[1], out[1])))
    with torch.no_grad():
        out = net(torch.randn(2, *CLIP), capture_blocks=[0, 3])
    # every block keeps the 1 class + 5 global tokens; only the grid is pooled (8x8 after block 1)
    assert [n - 6 for n, _ in lengths] == [t * h * w for _, (t, h, w) in lengths]
    assert lengths[0][1] == (2, 16, 16) and lengths[1][1] == (2, 8, 8)
    assert set(out.captured) == {0, 3}
    assert out.captured[0].shape == (2, 5, 32) and out.captured[3].shape == (2, 5, 64)
    assert out.tokens.shape == (2, 1 + 5 + 2 * 8 * 8, 64)
    assert not torch.allclose(out.captured[3][:, 0], out.captured[3][:, 1])


def test_global_tokens_change_the_grid_but_zero_tokens_is_the_plain_model() -> None:
    torch.manual_seed(0)
    plain = _tiny()
    with_global = _tiny(num_global_tokens=2)
    state = dict(plain.state_dict(), global_tokens=with_global.global_tokens.detach())
    with_global.load_state_dict(state)
    clip = torch.randn(1, *CLIP)
    with torch.no_grad():
        a, b = plain(clip), with_global(clip)
    assert not torch.allclose(a.tokens[:, 1:], b.tokens[:, 3:])  # the grid attends to them


def test_capture_requires_global_tokens_and_valid_blocks() -> None:
    with pytest.raises(ValueError, match="num_global_tokens"):
        _tiny()(torch.zeros(1, *CLIP), capture_blocks=[0])
    with pytest.raises(ValueError, match="blocks are 0..3"):
        _tiny(num_global_tokens=1)(torch.zeros(1, *CLIP), capture_blocks=[4])


# --------------------------------------------------------------------------- training options
def test_activation_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = _tiny(num_global_tokens=2).train()
    ckpt = _tiny(num_global_tokens=2, checkpoint_activations=True).train()
    ckpt.load_state_dict(plain.state_dict())
    clip = torch.randn(1, *CLIP)
    for net in (plain, ckpt):
        out = net(clip, capture_blocks=[1])
        (out.tokens.square().mean() + out.captured[1].sum()).backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_bf16_autocast_forward_with_memory() -> None:
    torch.manual_seed(0)
    net = _tiny(num_global_tokens=2)
    net.attach_memory(0, in_dim=16, kernel=3, stride=2, groups=1, max_distance=2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.randn(1, *CLIP), {0: _memory()}, capture_blocks=[0])
    assert out.tokens.shape == (1, 1 + 2 + 2 * 8 * 8, 64)
    assert torch.isfinite(out.tokens.float()).all()


def test_compile_flag_compiles_the_backbone_in_place() -> None:
    cfg = compose_config("train", ["memory=none", "model.compile=true"])
    module = DetectionModule(
        backbone=cfg.model.backbone,
        head=cfg.model.head,
        memory=cfg.memory,
        class_ids=[1],
        compile=cfg.model.compile,
    )
    backbone = module.model.backbone
    assert backbone._compiled_call_impl is not None
    assert "blocks.0.attn.qkv.weight" in backbone.state_dict()  # names unchanged


def test_bench_backbone_table_on_a_tiny_model() -> None:
    overrides = [
        "model=mvit_tiny",
        "model.backbone.num_frames=4",
        "model.backbone.crop_size=64",
    ]
    result = measure_backbone(overrides, repeats=1, device=torch.device("cpu"))
    assert result["clip"] == [1, *CLIP]
    assert result["max_abs_logit_diff"] <= 1e-5
    assert set(result["rows"]) == {"forward", "forward+backward"}
    assert all(ours > 0 and theirs > 0 for ours, theirs in result["rows"].values())


def test_frame_time_gives_two_frames_of_one_past_clip_different_position_terms() -> None:
    """Appendix A: the memory term uses each token's own time t^{m_k}, not its clip's only."""
    logits = {}
    for frame_time in (False, True):
        torch.manual_seed(0)
        net = _tiny(attention="eager")
        net.attach_memory(
            2, 16, kernel=1, stride=1, groups=1, max_distance=2, frame_time=frame_time
        )
        readout = net.blocks[2].attn.memory_readout
        frames = net.pos_encoding.temporal_size * 2  # one text token per frame of the past clip
        read = MemoryRead(
            tokens=torch.randn(1, 1, frames, 16),
            mask=torch.ones(1, 1, frames, dtype=torch.bool),
            distance=torch.tensor([1]),
        )
        kv = readout(read)
        q = torch.randn(1, readout.num_heads, net.pos_encoding.temporal_size * 4, readout.head_dim)
        rows = kv.rel_rows[kv.rel_index]  # [M] table row of each memory token
        logits[frame_time] = readout.rel_pos(q, (net.pos_encoding.temporal_size, 2, 2), rows)
    first, last = logits[True][..., 0], logits[True][..., -1]  # the clip's first and last frame
    assert not torch.allclose(first, last)
    assert torch.equal(logits[False][..., 0], logits[False][..., -1])  # clip time: one term


# --------------------------------------------------------------------------- one memory attention
def _attention_inputs(prefix: int = 1) -> dict:
    """q/k/v [2, 2, P+8, 8] on a 2x2x2 grid, 2 memory entries of 3 tokens (row 1: none valid)."""
    gen = torch.Generator().manual_seed(0)
    thw, tokens, heads, dim, entries, per_entry = (2, 2, 2), prefix + 8, 2, 8, 2, 3
    q, k, v = (torch.randn(2, heads, tokens, dim, generator=gen) for _ in range(3))
    mask = torch.ones(2, entries * per_entry, dtype=torch.bool)
    mask[0, 0], mask[1] = False, False
    memory = MemoryKV(
        key=torch.randn(2, heads, entries * per_entry, dim, generator=gen),
        value=torch.randn(2, heads, entries * per_entry, dim, generator=gen),
        mask=mask,
        distance=torch.arange(1, entries + 1).repeat_interleave(per_entry),
        entry_distance=torch.arange(1, entries + 1),
        rel_rows=torch.arange(entries),
        rel_index=torch.arange(entries).repeat_interleave(per_entry),
    )
    table = torch.randn(entries + 1, thw[0], dim, generator=gen)
    tables = tuple(torch.randn(3, dim, generator=gen) for _ in range(3))
    return dict(
        q=q,
        k=k,
        v=v,
        memory=memory,
        thw=thw,
        prefix=prefix,
        memory_rel_pos=lambda grid_q, q_thw, rows: memory_rel_pos(table, grid_q, q_thw, rows),
        grid=GridRelPos(thw, tables),  # type: ignore[arg-type]
    )


def test_attend_with_memory_explicit_and_fused_paths_agree() -> None:
    inputs = _attention_inputs()
    grid = inputs.pop("grid")
    # MViT: every term folded into the fused kernel; ViT: memory terms as an additive bias.
    for fold, grid_rel_pos in ((True, grid), (False, None)):
        explicit, mass = attend_with_memory(
            **inputs, fused=False, fold=fold, grid_rel_pos=grid_rel_pos, record=True
        )
        fused, _ = attend_with_memory(**inputs, fused=True, fold=fold, grid_rel_pos=grid_rel_pos)
        assert torch.allclose(explicit, fused, atol=1e-5)
        assert mass is not None and mass.shape == (2, 2) and torch.equal(mass[1], torch.zeros(2))
    _, biased_mass = attend_with_memory(**inputs, fused=True, fold=False, record=True)
    assert biased_mass is not None and torch.allclose(mass, biased_mass, atol=1e-6)
    # The bias form runs a row without any valid memory exactly as that row without memory.
    row = {name: inputs[name][1:] for name in ("q", "k", "v")}
    plain, _ = attend_with_memory(**{**inputs, **row, "memory": None}, fused=True, fold=False)
    biased, _ = attend_with_memory(**inputs, fused=True, fold=False)
    assert torch.equal(biased[1:], plain) and not torch.allclose(biased[:1], plain)


@pytest.mark.parametrize("arch", ["mvit", "vit"])
def test_both_backbones_attend_through_attend_with_memory(
    arch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def spy(q: Tensor, k: Tensor, v: Tensor, memory: MemoryKV | None, **kwargs: object) -> object:
        calls.append(memory is not None)
        return memory_attention.attend_with_memory(q, k, v, memory, **kwargs)  # type: ignore[arg-type]

    module = mvit_attention if arch == "mvit" else vit
    assert module.attend_with_memory is attend_with_memory
    monkeypatch.setattr(module, "attend_with_memory", spy)
    torch.manual_seed(0)
    if arch == "mvit":
        net = _tiny(attention="sdpa")
        clip = torch.randn(1, *CLIP)
    else:
        net = vit.VideoViT(num_frames=4, crop_size=32, depth=2, embed_dim=32, num_heads=2).eval()
        clip = torch.randn(1, 3, 4, 32, 32)
    net.attach_memory(1, 16, kernel=1, stride=1, groups=1, max_distance=2)
    with torch.no_grad():
        net(clip, {1: _memory()})
    assert calls == [index == 1 for index in range(len(net.blocks))]

"""Video ViT in the VideoMAE layout (2x16x16 tubelets, fixed sin-cos positions) reading memory.

The module names follow VideoMAE's fine-tuning model (`patch_embed.proj`, `blocks.N.attn.qkv`,
`q_bias`/`v_bias`, `mlp.fc1`/`fc2`, ...), so its checkpoints load by name (`load_videomae`).
For detection the backbone returns every token after one LayerNorm (`norm`): VideoMAE's
classifier instead mean-pools the tokens and normalises the mean with `fc_norm`; the loader maps
that `fc_norm` onto `norm` (section 4.3 of the paper fine-tunes VideoMAE this way on AVA, with
the memory's temporal relative-position term of appendix A between queries and memory tokens).
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from tinymem.layers.memory_attention import MemoryKV, attend_with_memory, stack_kv
from tinymem.layers.rel_pos import Grid
from tinymem.memory.cache import MemoryRead
from tinymem.memory.readout import MemoryReadout
from tinymem.models.backbone import (
    Backbone,
    BackboneOutput,
    BlockGeometry,
    collect_block_state,
)
from tinymem.models.checkpoints import CheckpointError, load_strict, read_state_dict

LAYER_NORM_EPS = 1e-6
INIT_STD = 0.02  # truncated-normal std of linear weights and global tokens (VideoMAE's init)
SINUSOID_BASE = 10000.0  # wavelength base of the sin-cos table
IN_CHANNELS = 3
POS_EMBED_ATOL = 1e-5  # a checkpoint's `pos_embed` must match the fixed table this closely

# VideoMAE checkpoint keys that detection does not use: its Kinetics/SSv2 classifier.
DROPPED_VIDEOMAE_KEYS = ("head.weight", "head.bias")
# VideoMAE's norm after mean pooling (its default `use_mean_pooling=True`) -> our token norm.
FC_NORM_RENAME = {"fc_norm.weight": "norm.weight", "fc_norm.bias": "norm.bias"}
MEMORY_READOUT_KEY = ".memory_readout."  # parameters VideoMAE has no counterpart for
GLOBAL_TOKENS_KEY = "global_tokens"


def sinusoid_table(num_positions: int, dim: int) -> Tensor:
    """VideoMAE's fixed 1D sin-cos table [1, N, dim] over token positions 0..N-1.

    Channel c of position p is sin (c even) or cos (c odd) of p / 10000^(2*(c//2)/dim).
    """
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]  # [N, 1]
    channel = torch.arange(dim)
    exponent = (2 * (channel // 2)).to(torch.float64) / dim  # [dim]
    angle = position / SINUSOID_BASE**exponent  # [N, dim]
    table = torch.where(channel % 2 == 0, angle.sin(), angle.cos())
    return table.to(torch.float32)[None]  # [1, N, dim]


class TubeletEmbed(nn.Module):
    """Non-overlapping tubelet patches: Conv3d with kernel = stride = (t, p, p)."""

    def __init__(self, dim: int, tubelet_size: int, patch_size: int) -> None:
        super().__init__()
        size = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(IN_CHANNELS, dim, kernel_size=size, stride=size)

    def forward(self, video: Tensor) -> Tensor:
        """Embed a clip [B, 3, T, H, W] into t-major tokens [B, T'H'W', dim]."""
        x = self.proj(video)  # [B, dim, T', H', W']
        return x.flatten(2).transpose(1, 2)  # [B, T'H'W', dim]


class VideoAttention(nn.Module):
    """VideoMAE self-attention (bias-free qkv plus learned q and v biases; k has none).

    With memory, the memory keys/values are put in front of the current ones, the grid queries
    get the readout's temporal relative-position term on the memory columns, and invalid memory
    tokens are removed from the softmax. Rows whose memory is entirely invalid run exactly the
    attention without memory.
    """

    memory_readout: MemoryReadout | None

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"model.backbone.num_heads={num_heads} must divide embed_dim={dim}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)
        self.memory_readout = None
        self.keep_kv = False  # keep this step's keys/values (vision memory writes them)
        self.kept_kv: Tensor | None = None  # [B, N, 2C] detached
        self.record_attention = False  # record the attention mass each memory entry receives
        self.memory_attention: Tensor | None = None  # [B, l]

    def forward(self, x: Tensor, thw: Grid, prefix: int, memory: MemoryKV | None = None) -> Tensor:
        """Attend tokens [B, P + T*H*W, C] (P prefix tokens first), reading memory if given."""
        batch, tokens, dim = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))  # [3C]
        qkv = F.linear(x, self.qkv.weight, bias)  # [B, N, 3C]
        q, k, v = qkv.reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(
            2, 0, 3, 1, 4
        )  # each [B, heads, N, head_dim]
        if self.keep_kv:
            self.kept_kv = stack_kv(k, v)
        out, mass = attend_with_memory(
            q,
            k,
            v,
            memory,
            thw=thw,
            prefix=prefix,
            memory_rel_pos=None if self.memory_readout is None else self.memory_readout.rel_pos,
            fused=True,
            fold=False,
            record=self.record_attention,
        )  # [B, heads, N, head_dim]
        if mass is not None:
            self.memory_attention = mass
        out = out.transpose(1, 2).reshape(batch, tokens, dim)  # [B, N, C]
        return self.proj(out)


class ViTBlock(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = VideoAttention(dim, num_heads)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: Tensor, thw: Grid, prefix: int, memory: MemoryKV | None = None) -> Tensor:
        """Run the block on tokens [B, P + T*H*W, C]."""
        x = x + self.drop_path(self.attn(self.norm1(x), thw, prefix, memory))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VideoViT(Backbone, nn.Module):
    """VideoMAE-style video ViT whose blocks can read memory (the backbone of TinyMem-ViT).

    `forward(video, memory, capture_blocks)` returns a `BackboneOutput`: normalised tokens
    [B, G + T'H'W', C] (G learned global tokens first, no class token) on the grid
    (T/tubelet, H/patch, W/patch), and the global tokens output by each block in
    `capture_blocks`. The input must be exactly [B, 3, num_frames, crop_size, crop_size]: the
    fixed sin-cos table covers the T'H'W' tokens of that size.
    """

    def __init__(
        self,
        num_frames: int,
        crop_size: int,
        depth: int = 12,
        embed_dim: int = 384,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        tubelet_size: int = 2,
        patch_size: int = 16,
        num_global_tokens: int = 0,
        drop_path: float = 0.0,
        checkpoint_activations: bool = False,
        pretrained: str | PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if num_frames % tubelet_size:
            raise ValueError(
                f"model.backbone.num_frames={num_frames} must be a multiple of "
                f"tubelet_size={tubelet_size}"
            )
        if crop_size % patch_size:
            raise ValueError(
                f"model.backbone.crop_size={crop_size} must be a multiple of "
                f"patch_size={patch_size}"
            )
        side = crop_size // patch_size
        self.thw = (num_frames // tubelet_size, side, side)
        self.input_shape = (IN_CHANNELS, num_frames, crop_size, crop_size)
        self.frame_stride = tubelet_size
        self.num_heads = num_heads
        self.num_global_tokens = num_global_tokens
        self.checkpoint_activations = checkpoint_activations
        self.out_dim = embed_dim

        self.patch_embed = TubeletEmbed(embed_dim, tubelet_size, patch_size)
        num_tokens = self.thw[0] * self.thw[1] * self.thw[2]
        self.register_buffer("pos_embed", sinusoid_table(num_tokens, embed_dim), persistent=False)
        self.global_tokens = (
            nn.Parameter(torch.zeros(1, num_global_tokens, embed_dim))
            if num_global_tokens > 0
            else None
        )
        rates = torch.linspace(0, drop_path, depth, device="cpu").tolist()  # linear in depth
        self.blocks = nn.ModuleList(
            ViTBlock(embed_dim, num_heads, mlp_ratio, rate) for rate in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self.apply(_init_weights)
        if self.global_tokens is not None:
            trunc_normal_(self.global_tokens, std=INIT_STD)
        if pretrained is not None:
            load_videomae(self, pretrained)

    def block_geometry(self, index: int) -> BlockGeometry:
        """Width, heads, query time, key/value grid and prefix (the same for every block)."""
        return BlockGeometry(
            width=self.out_dim,
            num_heads=self.num_heads,
            query_time=self.thw[0],
            kv_thw=self.thw,
            prefix=self.num_global_tokens,
        )

    def encode(
        self, video: Tensor, memory: Mapping[int, MemoryRead], capture: set[int], grid_at: set[int]
    ) -> BackboneOutput:
        """`forward` (`Backbone`): the tokens and global tokens of every block are one width."""
        x = self.patch_embed(video)  # [B, T'H'W', C]
        x = x + self.pos_embed.to(x.dtype)
        prefix = 0
        if self.global_tokens is not None:
            prefix = self.num_global_tokens
            tokens = self.global_tokens.expand(x.shape[0], -1, -1).to(x.dtype)
            x = torch.cat([tokens, x], dim=1)  # [B, G + T'H'W', C]
        recompute = self.checkpoint_activations and self.training and torch.is_grad_enabled()
        captured, grids = {}, {}
        for index, block in enumerate(self.blocks):
            read = memory.get(index)
            kv = block.attn.memory_readout(read) if read is not None else None
            if recompute:
                x = checkpoint(block, x, self.thw, prefix, kv, use_reentrant=False)
            else:
                x = block(x, self.thw, prefix, kv)
            if index in capture:
                captured[index] = x[:, :prefix]  # [B, G, C] the block's output global tokens
            if index in grid_at:
                grids[index] = (x[:, prefix:], self.thw)  # [B, T*H*W, C]
        kept, attention = collect_block_state(self.blocks)
        return BackboneOutput(
            tokens=self.norm(x),
            thw=self.thw,
            captured=captured,
            grids=grids,
            kept_kv=kept,
            memory_attention=attention,
        )


def _init_weights(module: nn.Module) -> None:
    """VideoMAE's init: truncated-normal linear weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def load_videomae(model: VideoViT, checkpoint: str | PathLike[str] | Mapping[str, Tensor]) -> None:
    """Load a VideoMAE fine-tuning checkpoint (a file or a state dict) strictly, by key name.

    Mapping from VideoMAE's `VisionTransformer` keys (after unwrapping `model`/`module`):

    - `patch_embed.proj.{weight,bias}`, and for every block N `blocks.N.norm1.*`,
      `blocks.N.attn.qkv.weight`, `blocks.N.attn.q_bias`, `blocks.N.attn.v_bias`,
      `blocks.N.attn.proj.*`, `blocks.N.norm2.*`, `blocks.N.mlp.fc1.*`, `blocks.N.mlp.fc2.*`:
      the same names here.
    - `norm.*` (checkpoints without mean pooling) -> `norm.*`.
    - `fc_norm.*` (VideoMAE's default mean pooling, where `norm` is an identity) -> `norm.*`:
      the LayerNorm VideoMAE applied to the mean token is applied to every token here.
    - `head.*` (the video classifier): dropped, detection has its own head.
    - `pos_embed` (only present if it was saved): dropped when it equals the fixed sin-cos table,
      which is recomputed; any other (learned) table is an error.

    Parameters VideoMAE has no counterpart for keep their initialisation: `global_tokens` and
    the memory readouts (`blocks.N.attn.memory_readout.*`). Any other missing or unexpected key
    (layer-scale `gamma_1`/`gamma_2`, a pre-training `encoder.`/`decoder.` layout, a different
    size) fails with a `CheckpointError` listing the keys; nothing is partially loaded.
    """
    if isinstance(checkpoint, Mapping):
        source, state = "VideoMAE state dict", dict(checkpoint)
    else:
        source, state = str(checkpoint), read_state_dict(checkpoint)
    if any(k in state for k in FC_NORM_RENAME) and any(k in state for k in FC_NORM_RENAME.values()):
        raise CheckpointError(
            f"{source}: has both fc_norm.* and norm.*; a VideoMAE model uses one of them"
        )
    converted = {}
    for key, value in state.items():
        if key in DROPPED_VIDEOMAE_KEYS:
            continue
        if key == "pos_embed":
            _check_fixed_pos_embed(model, value, source)
            continue
        converted[FC_NORM_RENAME.get(key, key)] = value
    for key, value in model.state_dict().items():
        if key == GLOBAL_TOKENS_KEY or MEMORY_READOUT_KEY in key:
            converted.setdefault(key, value)
    load_strict(model, converted, source)


def _check_fixed_pos_embed(model: VideoViT, pos_embed: Tensor, source: str) -> None:
    expected = model.pos_embed
    if tuple(pos_embed.shape) != tuple(expected.shape):
        raise CheckpointError(
            f"{source}: pos_embed has shape {tuple(pos_embed.shape)}, the model's fixed sin-cos "
            f"table is {tuple(expected.shape)} (num_frames/crop_size differ from the checkpoint's)"
        )
    if not torch.allclose(pos_embed.float().cpu(), expected.cpu(), atol=POS_EMBED_ATOL):
        raise CheckpointError(
            f"{source}: pos_embed is not the fixed sin-cos table; learned position embeddings "
            "are not supported by VideoViT"
        )

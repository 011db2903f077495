"""Task heads on backbone tokens [B, P + T*H*W, C]: AVA box heads and clip classifiers.

Every head reads the last T*H*W tokens as the (T, H, W) grid; the P prefix tokens before it
(class token first, then any learned global tokens) are used only by `pool="cls"`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from timm.layers import Mlp, trunc_normal_
from torch import Tensor, nn
from torchvision.ops import roi_align

from tinymem.classes import BREAKFAST_ACTIONS, EK100_NOUNS, EK100_VERBS
from tinymem.layers.rel_pos import Grid

ROI_SIZE = 7  # RoIAlign output resolution (SlowFast / MeMViT AVA head)
BOX_COORDS = 4  # x1, y1, x2, y2
GRID_COORDS = 3  # t, y, x of a grid cell centre
POS_FREQUENCIES = 8  # Fourier bands per coordinate in the attention head's position embeddings
MLP_RATIO = 4.0  # hidden width / dim of the attention head's MLP
NORM_EPS = 1e-6  # LayerNorm epsilon, as in the MViTv2 backbone
INIT_STD = 0.02  # truncated-normal std for the new heads' linear layers

POOLS = ("mean", "cls")  # grid mean or the class token (first prefix token)
ACTION, ACTIVITY, VERB, NOUN = "action", "activity", "verb", "noun"  # output keys


def split_grid(tokens: Tensor, thw: tuple[int, int, int]) -> tuple[Tensor, Tensor]:
    """Split tokens [B, P + T*H*W, C] into prefix [B, P, C] and grid [B, T*H*W, C]."""
    t, h, w = thw
    grid_len = t * h * w
    expected = f"[B, P + T*H*W, C] with T*H*W = {t}*{h}*{w} = {grid_len} and P >= 0"
    if min(thw) < 1:
        raise ValueError(f"thw: expected three positive sizes (T, H, W), got {tuple(thw)}")
    if tokens.dim() != 3 or tokens.shape[1] < grid_len:
        raise ValueError(f"tokens: expected {expected}, got {tuple(tokens.shape)}")
    prefix_len = tokens.shape[1] - grid_len
    return tokens[:, :prefix_len], tokens[:, prefix_len:]


def _check_boxes(boxes: Tensor, box_mask: Tensor, batch: int) -> None:
    if boxes.dim() != 3 or boxes.shape[0] != batch or boxes.shape[2] != BOX_COORDS:
        raise ValueError(
            f"boxes: expected [B={batch}, N, {BOX_COORDS}] (normalised x1y1x2y2), "
            f"got {tuple(boxes.shape)}"
        )
    if box_mask.shape != boxes.shape[:2]:
        raise ValueError(
            f"box_mask: expected [B, N] = {tuple(boxes.shape[:2])}, got {tuple(box_mask.shape)}"
        )


def _fourier(coords: Tensor, num_frequencies: int) -> Tensor:
    """Sin/cos features [..., D * 2F] of coordinates [..., D] in [0, 1] at F octave bands."""
    bands = math.pi * 2.0 ** torch.arange(num_frequencies, device=coords.device)  # [F]
    angles = coords.unsqueeze(-1) * bands.to(coords.dtype)  # [..., D, F]
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # [..., D * 2F]


def _grid_centres(thw: tuple[int, int, int], like: Tensor) -> Tensor:
    """Normalised (t, y, x) centres [T*H*W, 3] of the grid cells, in token order."""
    axes = [(torch.arange(n, device=like.device, dtype=like.dtype) + 0.5) / n for n in thw]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, GRID_COORDS)


def _init_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=INIT_STD)
        nn.init.zeros_(module.bias)


def roi_pool(
    grid: Tensor,
    thw: tuple[int, int, int],
    boxes: Tensor,
    box_mask: Tensor,
    input_size: tuple[int, int],
    roi_size: int = ROI_SIZE,
) -> Tensor:
    """SlowFast RoI features [B, N, C]: temporal mean -> RoIAlign -> spatial max.

    `grid` [B, T*H*W, C] are tokens on a (T, H, W) grid, `boxes` [B, N, 4] normalised x1y1x2y2
    in an input of `input_size` (H, W) pixels; features of masked-out boxes are zeros.
    """
    batch, num_boxes, _ = boxes.shape
    t, h, w = thw
    height, width = input_size
    if height <= 0 or width <= 0:
        raise ValueError(f"input_size: expected positive (H, W), got {tuple(input_size)}")
    feat = grid.transpose(1, 2).reshape(batch, -1, t, h, w).mean(dim=2)  # [B, C, H, W]
    spatial_scale = w / width  # grid cells per input pixel (1/32 for MViTv2 at 224)
    # Boxes in input pixels. y is measured at the horizontal stride, so the single roi_align
    # scale maps both axes onto the grid even when rounding made the strides differ.
    y_extent = h / spatial_scale  # == height whenever h / height == w / width
    pixel_boxes = boxes * boxes.new_tensor([width, y_extent, width, y_extent])  # [B, N, 4]
    # RoIAlign in float32: box coordinates need it, and CPU roi_align has no bf16 kernel
    rois = roi_align(
        feat.float(),
        list(pixel_boxes.float().unbind(0)),
        output_size=roi_size,
        spatial_scale=spatial_scale,
        sampling_ratio=0,
        aligned=True,
    )  # [B*N, C, roi, roi]
    features = rois.amax(dim=(2, 3)).reshape(batch, num_boxes, -1).to(grid.dtype)  # [B, N, C]
    return features.masked_fill(~box_mask.bool().unsqueeze(-1), 0.0)


class RoIHead(nn.Module):
    """AVA detection head (SlowFast / MeMViT): temporal mean -> RoIAlign -> spatial max -> linear.

    Returns per-box logits (sigmoid at inference, BCE in training) and the pooled RoI features,
    which are also what region memory stores.
    """

    def __init__(
        self, dim: int, num_classes: int, roi_size: int = ROI_SIZE, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.roi_size = roi_size
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_classes)

    def roi_features(
        self, grid: Tensor, thw: Grid, boxes: Tensor, box_mask: Tensor, input_size: tuple[int, int]
    ) -> Tensor:
        """Max-pooled RoIAlign features [B, N, C] of boxes on grid tokens [B, T*H*W, C]."""
        _check_boxes(boxes, box_mask, grid.shape[0])
        return roi_pool(grid, thw, boxes, box_mask, input_size, self.roi_size)

    def classify(
        self, roi: Tensor, grid: Tensor, thw: tuple[int, int, int], boxes: Tensor, box_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Logits [B, N, K] and box features [B, N, C] from RoI features [B, N, C]."""
        return self.classifier(self.dropout(roi)), roi

    def forward(
        self,
        tokens: Tensor,
        thw: tuple[int, int, int],
        boxes: Tensor,
        box_mask: Tensor,
        input_size: tuple[int, int],
    ) -> tuple[Tensor, Tensor]:
        """Classify boxes ([B, N, 4] normalised x1y1x2y2, [B, N] mask) on tokens [B, P+THW, C].

        The last T*H*W tokens are the grid; any P prefix tokens (class, region) are ignored.

        Returns logits [B, N, K] and RoI features [B, N, C] (zeros where the mask is False).
        """
        _, grid = split_grid(tokens, thw)  # [B, THW, C]
        roi = self.roi_features(grid, thw, boxes, box_mask, input_size)  # [B, N, C]
        return self.classify(roi, grid, thw, boxes, box_mask)


class CrossAttentionBlock(nn.Module):
    """Pre-norm block: box queries cross-attend to grid tokens, then an MLP, both residual."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = MLP_RATIO) -> None:
        super().__init__()
        self.norm_query = nn.LayerNorm(dim, eps=NORM_EPS)
        self.norm_context = nn.LayerNorm(dim, eps=NORM_EPS)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim, eps=NORM_EPS)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x: Tensor, query_pos: Tensor, context: Tensor, context_pos: Tensor) -> Tensor:
        """Update queries x [B, N, C] (positions [B, N, C]) from context [B, M, C] ([M, C])."""
        memory = self.norm_context(context)  # [B, M, C]
        attended, _ = self.attn(
            self.norm_query(x) + query_pos, memory + context_pos, memory, need_weights=False
        )  # [B, N, C]
        x = x + attended
        return x + self.mlp(self.norm_mlp(x))  # [B, N, C]


class AttentionRoIHead(RoIHead):
    """Attention box head: RoI features query the grid tokens through cross-attention blocks.

    The RoI features of `RoIHead` (plus a Fourier embedding of the box) are the queries; keys
    are the grid tokens plus a Fourier embedding of their (t, y, x) cell centres. Queries never
    attend to each other, so every box is scored independently of the others.
    """

    def __init__(
        self,
        dim: int,
        num_classes: int,
        roi_size: int = ROI_SIZE,
        dropout: float = 0.0,
        num_heads: int = 8,
        depth: int = 1,
        mlp_ratio: float = MLP_RATIO,
    ) -> None:
        super().__init__(dim, num_classes, roi_size=roi_size, dropout=dropout)
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"num_heads: expected a divisor of dim={dim}, got {num_heads}")
        if depth < 1:
            raise ValueError(f"depth: expected at least one attention block, got {depth}")
        self.box_pos = nn.Linear(BOX_COORDS * 2 * POS_FREQUENCIES, dim)
        self.grid_pos = nn.Linear(GRID_COORDS * 2 * POS_FREQUENCIES, dim)
        self.blocks = nn.ModuleList(
            CrossAttentionBlock(dim, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.apply(_init_linear)

    def classify(
        self, roi: Tensor, grid: Tensor, thw: tuple[int, int, int], boxes: Tensor, box_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Logits [B, N, K] and attended features [B, N, C] (zeros where the mask is False).

        The RoI features [B, N, C] are the queries; `forward` (RoIHead's) computes them.
        """
        x = roi
        query_pos = self.box_pos(_fourier(boxes.to(x.dtype), POS_FREQUENCIES))  # [B, N, C]
        centres = _grid_centres(thw, x)  # [THW, 3]
        context_pos = self.grid_pos(_fourier(centres, POS_FREQUENCIES))  # [THW, C]
        for block in self.blocks:
            x = block(x, query_pos, grid, context_pos)  # [B, N, C]
        features = self.norm(x).masked_fill(~box_mask.bool().unsqueeze(-1), 0.0)  # [B, N, C]
        return self.classifier(self.dropout(features)), features


class MultiTaskHead(nn.Module):
    """Clip classifier: pooled tokens -> LayerNorm -> dropout -> one linear per named output."""

    def __init__(
        self, dim: int, outputs: Mapping[str, int], pool: str = "mean", dropout: float = 0.0
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool: expected one of {POOLS}, got {pool!r}")
        if not outputs:
            raise ValueError("outputs: expected at least one {name: num_classes} entry")
        self.pool = pool
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.dropout = nn.Dropout(dropout)
        self.classifiers = nn.ModuleDict({name: nn.Linear(dim, n) for name, n in outputs.items()})
        self.apply(_init_linear)

    def pooled(self, tokens: Tensor, thw: tuple[int, int, int]) -> Tensor:
        """The normalised clip feature [B, C]: grid mean, or the class token for pool="cls"."""
        prefix, grid = split_grid(tokens, thw)  # [B, P, C], [B, THW, C]
        if self.pool == "mean":
            return self.norm(grid.mean(dim=1))  # [B, C]
        if prefix.shape[1] == 0:
            raise ValueError(
                f"tokens: pool='cls' expected a class token, [B, 1 + P' + T*H*W, C] with "
                f"T*H*W = {grid.shape[1]}, got {tuple(tokens.shape)}"
            )
        return self.norm(prefix[:, 0])  # [B, C]

    def forward(self, tokens: Tensor, thw: tuple[int, int, int]) -> dict[str, Tensor]:
        """Logits {name: [B, K_name]} for tokens [B, P + T*H*W, C]."""
        feature = self.dropout(self.pooled(tokens, thw))  # [B, C]
        return {name: linear(feature) for name, linear in self.classifiers.items()}


class ClassificationHead(MultiTaskHead):
    """Single-label clip head ("action"), optionally with a second "activity" linear (Breakfast)."""

    def __init__(
        self,
        dim: int,
        num_classes: int = BREAKFAST_ACTIONS,
        num_activities: int = 0,
        pool: str = "mean",
        dropout: float = 0.0,
    ) -> None:
        outputs = {ACTION: num_classes}
        if num_activities:
            outputs[ACTIVITY] = num_activities
        super().__init__(dim, outputs, pool=pool, dropout=dropout)


class VerbNounHead(MultiTaskHead):
    """Epic-Kitchens-100 head: one pooled feature, separate "verb" and "noun" linears."""

    def __init__(
        self,
        dim: int,
        num_verbs: int = EK100_VERBS,
        num_nouns: int = EK100_NOUNS,
        pool: str = "mean",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(dim, {VERB: num_verbs, NOUN: num_nouns}, pool=pool, dropout=dropout)


def action_scores(verb_logits: Tensor, noun_logits: Tensor) -> Tensor:
    """Joint verb-noun scores [B, V, N] = softmax(verb) outer softmax(noun); each row sums to 1.

    Flattened to [B, V*N], action (v, n) sits at index v * N + n; the top action is the pair of
    the top verb and the top noun, so it is right exactly when both are (EK-100 action accuracy).
    """
    if verb_logits.dim() != 2 or noun_logits.dim() != 2:
        raise ValueError(
            f"expected verb_logits [B, V] and noun_logits [B, N], got "
            f"{tuple(verb_logits.shape)} and {tuple(noun_logits.shape)}"
        )
    if verb_logits.shape[0] != noun_logits.shape[0]:
        raise ValueError(
            f"noun_logits: expected batch {verb_logits.shape[0]} as verb_logits, "
            f"got {tuple(noun_logits.shape)}"
        )
    verbs = verb_logits.softmax(dim=-1)  # [B, V]
    nouns = noun_logits.softmax(dim=-1)  # [B, N]
    return verbs.unsqueeze(2) * nouns.unsqueeze(1)  # [B, V, N]

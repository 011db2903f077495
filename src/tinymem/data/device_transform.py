"""The clip transform's per-pixel tail, run batched on the training device after transfer.

Workers ship uint8 clips [B, T, H, W, 3] (already resized, cropped and flipped, boxes already
transformed) with the colour-jitter parameters each clip drew on the CPU (``jitter_params``:
the same random draws, in the same order, as ``v2.ColorJitter`` in the CPU transform). On the
device :func:`finish_clips` applies each clip's jitter with torchvision's own kernels (uint8,
as the CPU transform did), converts to float, normalises and returns the model's layout
[B, 3, T, H, W]. On the CPU the result equals the CPU transform's bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

JITTER_FIELDS = 7  # the order of the 4 colour ops, then brightness, contrast, saturation factors
NO_JITTER = (math.nan,) * JITTER_FIELDS  # a clip without colour jitter


def jitter_params(jitter: v2.ColorJitter) -> Tensor:
    """Draw one clip's colour-jitter parameters as ``jitter`` would (same RNG calls); [7]."""
    params = jitter.make_params([])
    factors = [
        math.nan if params[name] is None else params[name]
        for name in ("brightness_factor", "contrast_factor", "saturation_factor")
    ]
    return torch.tensor([*params["fn_idx"].tolist(), *factors], dtype=torch.float64)


def _jitter_clip(clip: Tensor, params: Sequence[float]) -> Tensor:
    """ColorJitter's ops on one uint8 clip [T, 3, H, W], in the drawn order (hue never set)."""
    order, factors = params[:4], params[4:]
    if math.isnan(order[0]):  # a clip without jitter (padding, evaluation)
        return clip
    kernels = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation)
    for fn_id in order:
        fn_id = int(fn_id)
        if fn_id < len(kernels) and not math.isnan(factors[fn_id]):
            clip = kernels[fn_id](clip, float(factors[fn_id]))
    return clip


def finish_clips(
    video: Tensor,
    jitter: Tensor | None,
    valid: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
) -> Tensor:
    """uint8 clips [B, T, H, W, 3] -> jittered, normalised float [B, 3, T, H, W].

    ``jitter`` [B, 7] (rows of NaN: none) or None; rows where ``valid`` is False (padding) are
    zeros, as the CPU path's placeholders.
    """
    clips = video.permute(0, 1, 4, 2, 3)  # [B, T, 3, H, W]
    if jitter is not None and not torch.isnan(jitter[:, 4:]).all():
        rows = jitter.tolist()
        clips = torch.stack(
            [
                _jitter_clip(clip.contiguous(), params)
                for clip, params in zip(clips, rows, strict=True)
            ]
        )
    clips = F.to_dtype(clips, torch.float32, scale=True)
    clips = F.normalize(clips, list(mean), list(std))  # [B, T, 3, H, W]
    keep = valid.to(clips.device).view(-1, 1, 1, 1, 1)
    clips = torch.where(keep, clips, torch.zeros((), device=clips.device))  # padding rows: 0
    return clips.permute(0, 2, 1, 3, 4).contiguous()  # [B, 3, T, H, W]


__all__ = ["JITTER_FIELDS", "NO_JITTER", "finish_clips", "jitter_params"]

"""CLIP image memory: one projected CLIP image embedding per frame of a clip (frozen tower)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch import Tensor, nn

from tinymem.memory.clip_weights import create_clip
from tinymem.memory.encoders import BUNDLED_OPEN_CLIP_CONFIGS  # noqa: F401  (registers configs)
from tinymem.normalize import VIDEO_MEAN, VIDEO_STD


def _channel_stats(values: tuple[float, ...]) -> Tensor:
    return torch.tensor(values).view(1, 3, 1, 1)  # [1, C, 1, 1]


class ClipVisionEncoder(nn.Module):
    """Frozen open_clip image tower: T memory tokens per clip (image embedding + projection).

    Clips arrive normalised for the video backbone; frames are mapped back to [0, 1], resized
    to the tower's input size and normalised with CLIP's statistics. `pretrained` is a local
    checkpoint path, or None for random weights (tests, the demo's tiny tower).
    """

    def __init__(self, model_name: str, pretrained: str | None = None) -> None:
        super().__init__()
        # fails when the weights need the other activation (OpenAI's: QuickGELU) than model_name
        clip = create_clip(model_name, pretrained, "memory.clip_vision")
        self.visual = clip.visual.requires_grad_(False).eval()
        size = self.visual.image_size
        self.image_size = tuple(size) if isinstance(size, tuple | list) else (size, size)
        self.dim = int(self.visual.output_dim)
        self.register_buffer("video_mean", _channel_stats(VIDEO_MEAN), persistent=False)
        self.register_buffer("video_std", _channel_stats(VIDEO_STD), persistent=False)
        self.register_buffer("clip_mean", _channel_stats(OPENAI_DATASET_MEAN), persistent=False)
        self.register_buffer("clip_std", _channel_stats(OPENAI_DATASET_STD), persistent=False)

    def train(self, mode: bool = True) -> ClipVisionEncoder:
        """Stay in eval mode: the tower is frozen."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, video: Tensor) -> Tensor:
        """Embed each frame of clips [B, 3, T, H, W] into memory tokens [B, T, D]."""
        batch, _, frames = video.shape[:3]
        x = video.transpose(1, 2).flatten(0, 1).float()  # [B*T, 3, H, W]
        x = (x * self.video_std + self.video_mean).clamp(0, 1)
        x = F.interpolate(x, size=self.image_size, mode="bilinear", antialias=True)
        x = (x - self.clip_mean) / self.clip_std
        emb = self.visual(x.to(next(self.visual.parameters()).dtype))  # [B*T, D]
        return emb.float().reshape(batch, frames, self.dim)

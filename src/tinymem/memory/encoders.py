"""Memory encoders: what a clip writes into each memory type."""

from __future__ import annotations

import logging
from pathlib import Path

import open_clip
import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

# open_clip model configs shipped with tinymem (e.g. the small random text tower of the demo).
BUNDLED_OPEN_CLIP_CONFIGS = Path(__file__).parent / "open_clip_configs"
open_clip.add_model_config(BUNDLED_OPEN_CLIP_CONFIGS)


class TextEncoder(nn.Module):
    """Frozen CLIP text tower: one memory token per caption (EOT token + text projection).

    `pretrained` is a local checkpoint path (or None for random weights, as in the demo); the
    same code path serves both. Embeddings are cached per unique caption, since the tower is
    frozen.
    """

    def __init__(self, model_name: str, pretrained: str | None = None) -> None:
        super().__init__()
        if pretrained is not None and not Path(pretrained).is_file():
            raise FileNotFoundError(
                f"memory.text_encoder.pretrained: no file at {pretrained!r}; give a local "
                "open_clip/OpenAI CLIP checkpoint path (nothing is downloaded)"
            )
        clip = open_clip.create_model(model_name, pretrained=pretrained)
        clip.visual = None  # only the text tower is used
        clip.requires_grad_(False)
        self.clip = clip.eval()
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.dim = int(self._encode(self.tokenizer([""])).shape[-1])
        self._cache: dict[str, Tensor] = {}

    def train(self, mode: bool = True) -> TextEncoder:
        """Stay in eval mode: the tower is frozen."""
        return super().train(False)

    def _encode(self, tokens: Tensor) -> Tensor:
        return self.clip.encode_text(tokens.to(self.clip.token_embedding.weight.device))

    @torch.no_grad()
    def forward(self, captions: list[list[str]]) -> Tensor:
        """Embed B x T captions into [B, T, D] memory tokens."""
        missing = sorted({c for row in captions for c in row if c not in self._cache})
        if missing:
            for caption, emb in zip(
                missing, self._encode(self.tokenizer(missing)).float().cpu(), strict=True
            ):
                self._cache[caption] = emb
        device = self.clip.token_embedding.weight.device
        return torch.stack([torch.stack([self._cache[c] for c in row]) for row in captions]).to(
            device
        )


def pad_region_tokens(features: Tensor, mask: Tensor, n_region: int) -> tuple[Tensor, Tensor]:
    """Pad (or truncate) per-box RoI features [B, N, C] to [B, n_region, C] with a mask.

    Truncation keeps the first boxes; callers order boxes by score so the best ones stay.
    """
    batch, num, dim = features.shape
    out = features.new_zeros(batch, n_region, dim)
    out_mask = mask.new_zeros(batch, n_region)
    keep = min(num, n_region)
    out[:, :keep] = features[:, :keep]
    out_mask[:, :keep] = mask[:, :keep]
    return out, out_mask

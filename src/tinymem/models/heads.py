"""Task heads on backbone tokens."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.ops import roi_align


class RoIHead(nn.Module):
    """AVA detection head (MeMViT style): temporal mean -> RoIAlign -> spatial max -> linear.

    Returns per-box logits (sigmoid at inference, BCE in training) and the pooled RoI features,
    which are also what region memory stores.
    """

    def __init__(self, dim: int, num_classes: int, roi_size: int = 7, dropout: float = 0.0) -> None:
        super().__init__()
        self.roi_size = roi_size
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_classes)

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
        batch, num_boxes, _ = boxes.shape
        t, h, w = thw
        grid = tokens[:, tokens.shape[1] - t * h * w :]  # [B, THW, C]
        feat = grid.transpose(1, 2).reshape(batch, -1, t, h, w).mean(dim=2)  # [B, C, H, W]
        height, width = input_size
        scale = boxes.new_tensor([width, height, width, height])
        pixel_boxes = boxes * scale  # [B, N, 4] in input pixels
        rois = roi_align(
            feat,
            list(pixel_boxes.unbind(0)),
            output_size=self.roi_size,
            spatial_scale=w / width,
            sampling_ratio=0,
            aligned=True,
        )  # [B*N, C, roi, roi]
        features = rois.amax(dim=(2, 3)).reshape(batch, num_boxes, -1)  # [B, N, C]
        features = features * box_mask.unsqueeze(-1)
        return self.classifier(self.dropout(features)), features

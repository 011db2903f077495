"""The frame rate training clips were sampled at, recorded in every checkpoint for prediction.

A clip is `num_frames` frames `sample_rate` frames apart: its time span depends on the frame
rate. Prediction samples clips by time at the rate the model was trained at, whatever the rate
(or variable rate) of the file it reads; the rate travels inside the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

CLIP_FPS_KEY = "tinymem_clip_fps"  # checkpoint entry: float, or None (each video's own rate)


def training_clip_fps(datamodule: Any) -> float | None:
    """The fixed frame rate of a datamodule's clips: JPEG frames' rate, the synthetic world's.

    None when clips are sampled at each video file's own rate (videos of mixed rates).
    """
    options = getattr(datamodule, "options", None)  # a StreamingDataModule's checked settings
    if getattr(options, "frame_layout", None) == "jpeg":
        return float(options.frame_fps)
    synthetic = getattr(options, "synthetic", None)
    fps = getattr(synthetic, "fps", None)
    return float(fps) if fps else None


def checkpoint_clip_fps(checkpoint: Mapping[str, Any]) -> float | None:
    """The training clip rate a checkpoint records (None: not recorded, or per-video rates)."""
    fps = checkpoint.get(CLIP_FPS_KEY)
    return float(fps) if isinstance(fps, int | float) and fps > 0 else None


class RecordClipRate(Callback):
    """Writes the training clip rate into every checkpoint saved (`CLIP_FPS_KEY`)."""

    def __init__(self, fps: float | None) -> None:
        super().__init__()
        self.fps = fps

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Record the rate."""
        checkpoint[CLIP_FPS_KEY] = self.fps

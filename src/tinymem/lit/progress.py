"""Training progress: a rich bar on a terminal, plain-text lines when output goes to a file.

A SLURM log (or any redirected stdout) cannot show a redrawn bar; `TextProgressBar` prints one
line every `every_n_steps` training steps instead: epoch, step, loss, clips per second and the
estimated time left for the run, and one line per validation with its metrics.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar
from torch import Tensor

from tinymem.lit.batch_end import BatchEnd, BatchEndCallback

DEFAULT_EVERY_N_STEPS = 50
SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600


def _clock(seconds: float) -> str:
    """`seconds` as H:MM:SS."""
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, SECONDS_PER_HOUR)
    minutes, secs = divmod(rest, SECONDS_PER_MINUTE)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _scalar(value: Any) -> float | None:
    """A float from a loss output (tensor, number, or a dict with "loss"); None otherwise."""
    if isinstance(value, Mapping):
        value = value.get("loss")
    if isinstance(value, Tensor) and value.numel() == 1:
        return float(value.detach())
    return float(value) if isinstance(value, int | float) else None


def _clips(batch: Any) -> int:
    """Clips in a batch (rows of its "video" tensor; 0 when the batch has none)."""
    video = batch.get("video") if isinstance(batch, Mapping) else None
    return int(video.shape[0]) if isinstance(video, Tensor) else 0


class TextProgressBar(BatchEndCallback, ProgressBar):
    """Plain-text progress, one line per `every_n_steps` steps (rank zero only)."""

    stages = ("train",)

    def __init__(self, every_n_steps: int = DEFAULT_EVERY_N_STEPS) -> None:
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps: expected a positive integer, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self._enabled = True
        self._start = 0.0
        self._start_step = 0
        self._clips = 0

    def disable(self) -> None:
        """Print nothing (other ranks, or Lightning's tuner)."""
        self._enabled = False

    def enable(self) -> None:
        """Print again."""
        self._enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the clock (a resumed run counts from its restored step)."""
        self._start = time.perf_counter()
        self._start_step = trainer.global_step
        self._clips = 0

    def batch_end(self, end: BatchEnd) -> None:
        """Every `every_n_steps` steps (and at an epoch's last one): one progress line."""
        trainer, outputs, batch, batch_idx = end.trainer, end.outputs, end.batch, end.batch_idx
        self._clips += _clips(batch) * trainer.world_size
        total = self.total_train_batches
        last = isinstance(total, int) and batch_idx + 1 >= total
        if not self._enabled or ((batch_idx + 1) % self.every_n_steps and not last):
            return
        elapsed = time.perf_counter() - self._start
        done = trainer.global_step - self._start_step
        remaining = trainer.estimated_stepping_batches - trainer.global_step
        eta = _clock(elapsed / done * remaining) if done > 0 else "?"
        loss = _scalar(outputs)
        parts = [
            f"epoch {trainer.current_epoch}",
            f"step {batch_idx + 1}/{total}",
            f"global step {trainer.global_step}",
            f"loss {loss:.4f}" if loss is not None else "loss ?",
            f"{self._clips / elapsed:.2f} clips/s" if elapsed > 0 else "? clips/s",
            f"ETA {eta}",
        ]
        self.print(" | ".join(parts), flush=True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """One line with the validation metrics."""
        if not self._enabled or trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        shown = " | ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
        self.print(f"epoch {trainer.current_epoch} validation | {shown}", flush=True)


def terminal_or_text_progress(every_n_steps: int = DEFAULT_EVERY_N_STEPS) -> ProgressBar:
    """Lightning's rich bar when stdout is a terminal, else a `TextProgressBar`."""
    if sys.stdout.isatty():
        return RichProgressBar()
    return TextProgressBar(every_n_steps)

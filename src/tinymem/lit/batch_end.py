"""One hook for the ends of training and validation batches.

Lightning calls `on_train_batch_end` and `on_validation_batch_end` with the same arguments (the
validation hook adds the dataloader index). A `BatchEndCallback` declares those two signatures
once and hands either call to `batch_end` as one `BatchEnd` record, for the stages it lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import Callback


@dataclass(frozen=True)
class BatchEnd:
    """A finished training or validation batch, as Lightning reports it to a callback."""

    trainer: Trainer
    module: LightningModule
    stage: str  # "train" or "val"
    outputs: Any  # what the step returned
    batch: Any
    batch_idx: int


class BatchEndCallback(Callback):
    """A callback acting at the end of the batches of `stages` ("train", "val") in `batch_end`."""

    stages: tuple[str, ...] = ("train", "val")

    def batch_end(self, end: BatchEnd) -> None:
        """Act on a finished batch of one of `stages` (nothing by default)."""

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Hand a finished training batch to `batch_end`."""
        if "train" in self.stages:
            self.batch_end(BatchEnd(trainer, pl_module, "train", outputs, batch, batch_idx))

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Hand a finished validation batch to `batch_end`."""
        if "val" in self.stages:
            self.batch_end(BatchEnd(trainer, pl_module, "val", outputs, batch, batch_idx))

"""The streaming LightningModule base: a `MemoryStream` per stage around a `build_tinymem` net."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from tinymem.lit.param_groups import weight_decay_groups
from tinymem.memory.cache import MemoryRead
from tinymem.memory.clip_vision import ClipVisionEncoder
from tinymem.memory.encoders import TextEncoder
from tinymem.memory.plan import MemorySpec
from tinymem.memory.stream import MemoryStream
from tinymem.models.build import ClassificationTask, DetectionTask, build_tinymem
from tinymem.models.tinymem import TinyMemOutput

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test", "predict")
INFERENCE_CAPTIONS = ("stored", "dynamic")  # where evaluation text memory comes from
# Checkpoints written before `build_tinymem` kept the frozen encoders beside the network.
LEGACY_ENCODER_PREFIXES = ("text_encoder.", "clip_vision_encoder.")


def nest_legacy_encoder_keys(
    module: torch.nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any
) -> None:
    """Load-state-dict pre-hook: `text_encoder.*` -> `model.text_encoder.*` (same for CLIP)."""
    for key in list(state_dict):
        local = key[len(prefix) :]
        if key.startswith(prefix) and local.startswith(LEGACY_ENCODER_PREFIXES):
            state_dict[f"{prefix}model.{local}"] = state_dict.pop(key)


class StreamingModule(pl.LightningModule):
    """A TinyMem network trained and evaluated clip by clip in streaming order.

    Memory state lives here: one `MemoryStream` per stage, cleared at the start of every epoch
    of that stage. Subclasses build the network with `_build_network` and give the forward of
    their task (`forward_step`); `stream_step` runs one streamed step around it.
    """

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        exclude_from_weight_decay: bool = False,
    ) -> None:
        super().__init__()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.exclude_from_weight_decay = exclude_from_weight_decay
        self.record_attention = False  # record memory attention per step (inspection, wandb)
        self.written_captions: list[list[str]] = []  # text memory written by the last step
        self.register_load_state_dict_pre_hook(nest_legacy_encoder_keys)

    # ------------------------------------------------------------------ construction
    def _build_network(
        self,
        model_cfg: Mapping[str, Any],
        memory: Mapping[str, Any],
        task: DetectionTask | ClassificationTask,
        compile: bool,
    ) -> None:
        """`self.model` from `build_tinymem`, and an empty `MemoryStream` per stage."""
        self.model = build_tinymem(model_cfg, memory, task)
        if compile:
            self.model.backbone.compile()  # in place: parameter names (and checkpoints) unchanged
        self.spec: MemorySpec = self.model.spec
        self.num_frames = model_cfg["backbone"]["num_frames"]
        self.memories = {stage: MemoryStream.for_network(self.model) for stage in STAGES}

    @property
    def text_encoder(self) -> TextEncoder | None:
        """The network's frozen text encoder (None without text memory)."""
        return self.model.text_encoder

    @property
    def clip_vision_encoder(self) -> ClipVisionEncoder | None:
        """The network's frozen CLIP image encoder (None without CLIP image memory)."""
        return self.model.clip_vision_encoder

    # ------------------------------------------------------------------ streaming
    def stream_step(self, batch: Mapping[str, Any], stage: str) -> TinyMemOutput:
        """One online step: mask stale memory, read, forward, write this clip's entries."""
        memory = self.memories[stage]
        memory.begin_step(batch["video_id"], batch["is_first"])
        self.model.record_memory_attention(self.record_attention)
        out = self.forward_step(batch, memory.read())
        captions, caption_mask = batch.get("captions"), None
        if "text" in memory.types:
            self.written_captions = captions = self.step_captions(batch, out, stage)
            caption_mask = self.caption_validity(captions, stage)  # [B, T] or None
        memory.write(
            out,
            batch["valid"],
            clip_index=batch.get("clip_index"),
            captions=captions,
            caption_mask=caption_mask,
            video=batch["video"],
            region_mask=batch.get("box_mask"),
        )
        return out

    def forward_step(self, batch: Mapping[str, Any], reads: dict[str, MemoryRead]) -> TinyMemOutput:
        """The network's forward on one batch given the memory reads (the task's inputs)."""
        raise NotImplementedError

    def step_captions(
        self, batch: Mapping[str, Any], out: TinyMemOutput, stage: str
    ) -> list[list[str]]:
        """Captions this step writes into text memory (the batch's stored ones by default)."""
        return batch["captions"]

    def caption_validity(self, captions: list[list[str]], stage: str) -> Tensor | None:
        """[B, T] bool: which written captions may be attended (None: all of them).

        Stored captions are all attendable (an empty one is the encoder's empty-caption token).
        """
        return None

    def _reset(self, stage: str) -> None:
        self.memories[stage].clear()

    def _flush_text_cache(self) -> None:
        if self.text_encoder is not None:
            self.text_encoder.flush()

    def on_train_epoch_end(self) -> None:
        """Write new text embeddings to the on-disk cache."""
        self._flush_text_cache()

    def on_validation_epoch_end(self) -> None:
        """Write new text embeddings to the on-disk cache."""
        self._flush_text_cache()

    def on_test_epoch_end(self) -> None:
        """Write new text embeddings to the on-disk cache."""
        self._flush_text_cache()

    def on_train_epoch_start(self) -> None:
        """Start the training streams with empty memory."""
        self._reset("train")

    def on_validation_epoch_start(self) -> None:
        """Start evaluation streams with empty memory."""
        self._reset("val")

    def on_test_epoch_start(self) -> None:
        """Start test streams with empty memory."""
        self._reset("test")

    def on_predict_epoch_start(self) -> None:
        """Start prediction streams with empty memory."""
        self._reset("predict")

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        """Optimizer (and optional scheduler) from the `_partial_` factories in the config.

        With `exclude_from_weight_decay`, biases, norms, relative-position tables and learned
        tokens form a second parameter group with weight decay 0 (MeMViT's practice).
        """
        if self.exclude_from_weight_decay:
            params: Any = weight_decay_groups(self.named_parameters())
        else:
            params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=params)
        if self.scheduler_factory is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

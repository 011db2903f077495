"""Streaming memory shared by the LightningModules: encoders, per-stage caches, the memory write."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from tinymem.lit.param_groups import weight_decay_groups
from tinymem.memory.cache import MemoryRead, StreamMemory
from tinymem.memory.clip_vision import ClipVisionEncoder
from tinymem.memory.encoders import TextEncoder, pad_region_tokens
from tinymem.memory.plan import ConfigError, MemorySpec, parse_memory_spec
from tinymem.models.tinymem import TinyMem, TinyMemOutput, build_backbone, region_widths

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test", "predict")
INFERENCE_CAPTIONS = ("stored", "dynamic")  # where evaluation text memory comes from


def plain(cfg: Any) -> Any:
    """A plain container from an OmegaConf node (anything else passes through)."""
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def with_global_tokens(backbone: Mapping[str, Any], memory: Mapping[str, Any]) -> dict[str, Any]:
    """The backbone config with `num_global_tokens = memory.n_region` when region tokens are read.

    Region-token memory is the output of learned global tokens; a backbone config that already
    sets a different non-zero count is an error naming both keys.
    """
    backbone = dict(backbone)
    depth = backbone.get("depth")
    plan = parse_memory_spec(memory, depth=depth) if isinstance(depth, int) else None
    if plan is None or "region_token" not in plan.types:
        return backbone
    count = backbone.get("num_global_tokens", 0)
    if count and count != plan.n_region:
        raise ConfigError(
            f"model.backbone.num_global_tokens={count} but memory.n_region={plan.n_region}: "
            "region_token memory reads one global token per region token; set one of them"
        )
    backbone["num_global_tokens"] = plan.n_region
    return backbone


def vision_options(memory: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """MeMViT compression settings from `memory.vision` (defaults when the key is absent)."""
    vision = memory.get("vision") or {}
    options = {}
    for key in ("kernel", "stride"):
        value = vision.get(key)
        if value is None:
            continue
        if len(value) != 3 or not all(isinstance(v, int) and v >= 1 for v in value):
            raise ConfigError(f"memory.vision.{key}: expected three positive integers (T, H, W)")
        options[f"vision_{key}"] = tuple(value)
    return options


class StreamingModule(pl.LightningModule):
    """A TinyMem network trained and evaluated clip by clip in streaming order.

    Memory state lives here: one `StreamMemory` per stage, cleared at the start of every epoch
    of that stage. Subclasses build `self.model` (a `TinyMem`) between `_build_memory_encoders`
    and `_build_caches`, and call `read_memory` / `write_memory` around its forward.
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

    # ------------------------------------------------------------------ construction
    def _build_network(self, backbone: Mapping[str, Any], memory: Mapping[str, Any], compile: bool):
        """The backbone, its memory spec and the frozen encoders of the plan's memory types."""
        net = build_backbone(with_global_tokens(backbone, memory))
        if compile:
            net.compile()  # in place: parameter names (and checkpoints) are unchanged
        self.spec: MemorySpec = parse_memory_spec(memory, depth=len(net.blocks))
        types = self.spec.types
        self.text_encoder = TextEncoder(**memory["text_encoder"]) if "text" in types else None
        self.clip_vision_encoder = (
            ClipVisionEncoder(**memory["clip_vision"]) if "clip_vision" in types else None
        )
        self.num_frames = backbone["num_frames"]
        return net

    def _memory_dims(self, net: Any) -> dict[str, int]:
        """Token width of each non-visual memory type."""
        dims = region_widths(net, self.spec)
        if self.text_encoder is not None:
            dims["text"] = self.text_encoder.dim
        if self.clip_vision_encoder is not None:
            dims["clip_vision"] = self.clip_vision_encoder.dim
        return dims

    def _build_caches(self, model: TinyMem) -> None:
        """Entry shapes of every cache the plan reads, and an empty memory per stage."""
        shapes: dict[str, tuple[int, int]] = {}
        types = self.spec.types
        if "text" in types:
            assert self.text_encoder is not None
            tokens = self.num_frames * self.text_encoder.tokens_per_caption
            shapes["text"] = (tokens, self.text_encoder.feature_dim)  # frozen features
        widths = region_widths(model.backbone, self.spec)
        for kind in {"region", "region_token"} & set(types):
            if not self.spec.per_block(kind):  # per-layer region tokens: the model's shapes
                shapes[kind] = (self.spec.n_region, widths[kind])
        if "clip_vision" in types:
            assert self.clip_vision_encoder is not None
            shapes["clip_vision"] = (self.num_frames, self.clip_vision_encoder.dim)
        shapes.update(model.vision_entry_shapes())
        self._entry_shapes = shapes
        self.memories = {stage: self._new_memory() for stage in STAGES}

    def _new_memory(self) -> StreamMemory:
        return StreamMemory(self._entry_shapes, self.spec.length, self.spec.stride)

    # ------------------------------------------------------------------ streaming
    def read_memory(self, batch: Mapping[str, Any], stage: str) -> dict[str, MemoryRead] | None:
        """Mask memory of rows that start a new video, then read every cache (None: no memory)."""
        memory = self.memories[stage]
        memory.begin_step(batch["video_id"], batch["is_first"])
        self.model.record_memory_attention(self.record_attention)
        if not self.spec.layers:
            return None
        reads = memory.read()
        if "text" in reads:  # the learned text head (if any) trains on what is read back
            assert self.text_encoder is not None
            read = reads["text"]
            reads["text"] = replace(read, tokens=self.text_encoder.project(read.tokens))
        return reads

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

    def write_memory(
        self, batch: Mapping[str, Any], out: TinyMemOutput, stage: str, region_mask: Tensor | None
    ) -> None:
        """Push this step's entry of every cache; padded rows write masked entries."""
        valid = batch["valid"]  # [B]
        entries: dict[str, tuple[Tensor, Tensor]] = {}
        for name in self._entry_shapes:
            if name == "text":
                assert self.text_encoder is not None
                self.written_captions = self.step_captions(batch, out, stage)
                text, mask = self.text_encoder(self.written_captions)  # [B, T*n, F], [B, T*n]
                present = self.caption_validity(self.written_captions, stage)  # [B, T] or None
                if present is not None:  # e.g. a dynamic caption of a clip without boxes
                    per_token = self.text_encoder.tokens_per_caption
                    mask = mask & present.to(mask.device).repeat_interleave(per_token, dim=1)
                entries[name] = (text, mask & valid[:, None])
            elif name == "region":
                assert out.region_features is not None and region_mask is not None
                mask = region_mask & valid[:, None]
                entries[name] = pad_region_tokens(out.region_features, mask, self.spec.n_region)
            elif name.split("@")[0] == "region_token":  # one cache, or one per layer
                tokens = out.region_tokens[name]  # [B, G, C]
                entries[name] = (tokens, valid[:, None].expand(-1, tokens.shape[1]))
            elif name == "clip_vision":
                assert self.clip_vision_encoder is not None
                frames = self.clip_vision_encoder(batch["video"])  # [B, T, D]
                entries[name] = (frames, valid[:, None].expand(-1, frames.shape[1]))
            else:  # vision@<block>: the block's own keys/values
                kv = out.kept_kv[name]  # [B, P+N_kv, 2C]
                entries[name] = (kv, valid[:, None].expand(-1, kv.shape[1]))
        self.memories[stage].write(entries)

    def _reset(self, stage: str) -> None:
        self.memories[stage] = self._new_memory()

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

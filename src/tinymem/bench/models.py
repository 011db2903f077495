"""The measured networks: TinyMem detectors built from the configs, and full memory reads.

The memory encoders are not built: the open_clip text tower encodes at construction, so it cannot
live on the meta device, and it runs once per unique caption anyway (its cost is reported on its
own). Text memory tokens get the width of the configured CLIP text embedding instead.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import hydra
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tinymem.config import compose_config
from tinymem.data.ava.formats import AVA_NUM_ACTIONS
from tinymem.memory.cache import MemoryRead
from tinymem.memory.plan import MemorySpec
from tinymem.memory.stream import MemoryStream
from tinymem.models.build import DetectionTask, build_tinymem, plain
from tinymem.models.tinymem import TinyMemDetector

BOXES_PER_CLIP = 1  # person boxes given to the RoI head per clip
COMPOSE_CACHE = 64  # composed configs kept (one per model size and memory kind)


@functools.lru_cache(maxsize=COMPOSE_CACHE)
def _compose(overrides: tuple[str, ...]) -> DictConfig:
    if GlobalHydra.instance().is_initialized():
        return hydra.compose(config_name="train", overrides=list(overrides))
    return compose_config("train", overrides)


def compose_train(overrides: Sequence[str]) -> DictConfig:
    """The train config with `overrides` (inside `python -m tinymem.bench` or from Python).

    Composed once per distinct override list; each call returns a fresh copy.
    """
    return copy.deepcopy(_compose(tuple(overrides)))


@dataclass
class Detector:
    """A TinyMem detector with its memory spec and the clip it was built for."""

    model: TinyMemDetector
    spec: MemorySpec
    frames: int  # T of the input clip
    crop: int  # H = W of the input clip
    entry_tokens: dict[str, int]  # tokens one clip writes per cache the plan reads


def build_detector(
    overrides: Sequence[str],
    kind: str,
    length: int,
    text_width: int,
    device: str | torch.device = "meta",
) -> Detector:
    """A `TinyMemDetector` for `memory=<kind>` with `l = length`, from train-config overrides.

    Text memory tokens are `text_width` wide (the CLIP text embedding), CLIP image memory too;
    one clip writes T text tokens (one per frame caption, times `n_tokens`), `n_region` region
    tokens and T CLIP image tokens.
    """
    cfg = compose_train([*overrides, f"memory={kind}"])
    memory = {**plain(cfg.memory), "length": length}
    widths = {"text": text_width, "clip_vision": text_width}
    with torch.device(device):
        model = build_tinymem(cfg.model, memory, DetectionTask(AVA_NUM_ACTIONS), widths)
    assert isinstance(model, TinyMemDetector)
    frames, crop = int(cfg.model.backbone.num_frames), int(cfg.model.backbone.crop_size)
    # tokens one clip writes per memory type (per-block caches of a type all write the same)
    entry_tokens = {name.split("@")[0]: n for name, (n, _) in model.entry_shapes().items()}
    return Detector(model.eval(), model.spec, frames, crop, entry_tokens)


def full_reads(detector: Detector, batch: int) -> dict[str, MemoryRead]:
    """A read of every cache the plan uses with all `l` entries present and valid.

    Entries are `s, 2s, ..., l*s` clips back; token values are random (they do not change the
    cost). Tensors are on the model's device.
    """
    device = next(detector.model.parameters()).device
    stream = MemoryStream.for_network(detector.model)
    return stream.full_read(batch, device, random=True)


def clip_inputs(detector: Detector, batch: int) -> tuple[torch.Tensor, ...]:
    """A random clip [B, 3, T, H, W], `BOXES_PER_CLIP` boxes [B, N, 4] and their mask [B, N]."""
    device = next(detector.model.parameters()).device
    video = torch.randn(batch, 3, detector.frames, detector.crop, detector.crop, device=device)
    boxes = torch.tensor([[0.1, 0.1, 0.6, 0.9]], device=device).expand(batch, BOXES_PER_CLIP, 4)
    box_mask = torch.ones(batch, BOXES_PER_CLIP, dtype=torch.bool, device=device)
    return video, boxes, box_mask

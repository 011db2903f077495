"""`build_tinymem`: the TinyMem network from the model and memory configs, without Lightning."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tinymem.memory.clip_vision import ClipVisionEncoder
from tinymem.memory.encoders import TextEncoder
from tinymem.memory.plan import ConfigError, parse_memory_spec
from tinymem.models.heads import AttentionRoIHead, MultiTaskHead, RoIHead
from tinymem.models.tinymem import (
    TinyMem,
    TinyMemClassifier,
    TinyMemDetector,
    build_backbone,
    region_widths,
)

# Box heads by `model.head.kind`.
BOX_HEADS: dict[str, type[RoIHead]] = {"roi": RoIHead, "attention": AttentionRoIHead}
CLASSIFIER_DROPS = ("kind", "roi_size")  # box-head options a clip classifier ignores
ENCODED_TYPES = ("text", "clip_vision")  # memory types written by a frozen encoder


@dataclass(frozen=True)
class DetectionTask:
    """Per-box action detection (AVA): `num_classes` independent (sigmoid) actions."""

    num_classes: int


@dataclass(frozen=True)
class ClassificationTask:
    """Clip classification: class counts per head output, e.g. {"verb": 97, "noun": 300}."""

    outputs: Mapping[str, int]


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


def build_tinymem(
    model_cfg: Mapping[str, Any],
    memory_cfg: Mapping[str, Any],
    task: DetectionTask | ClassificationTask,
    memory_widths: Mapping[str, int] | None = None,
) -> TinyMem:
    """The TinyMem network: backbone, memory readouts, the frozen encoders it needs, task head.

    `model_cfg` is the `model` config group (its `backbone` and `head` keys are read; the rest
    configures training), `memory_cfg` the `memory` group. Stream clips through the result with
    a `MemoryStream.for_network(net)`. With `memory_widths` ({"text": 512, ...}) the frozen
    encoders are not built (they cannot live on the meta device): text and CLIP image memory are
    then read at those widths, from reads made by the caller.
    """
    backbone_cfg = with_global_tokens(plain(model_cfg["backbone"]), plain(memory_cfg))
    memory = plain(memory_cfg)
    head_cfg = dict(plain(model_cfg["head"]))
    backbone = build_backbone(backbone_cfg)
    spec = parse_memory_spec(memory, depth=len(backbone.blocks))
    frames = int(backbone_cfg["num_frames"])
    text_encoder = clip_vision_encoder = None
    if memory_widths is None:
        if "text" in spec.types:
            text_encoder = TextEncoder(**memory["text_encoder"])
        if "clip_vision" in spec.types:
            clip_vision_encoder = ClipVisionEncoder(**memory["clip_vision"])
    dims = region_widths(backbone, spec)
    shapes = {kind: (spec.n_region, width) for kind, width in dims.items()}  # region, region_token
    if text_encoder is not None:
        dims["text"] = text_encoder.dim
        tokens = frames * text_encoder.tokens_per_caption
        shapes["text"] = (tokens, text_encoder.feature_dim)  # frozen features
    if clip_vision_encoder is not None:
        dims["clip_vision"] = clip_vision_encoder.dim
        shapes["clip_vision"] = (frames, clip_vision_encoder.dim)
    if memory_widths is not None:
        dims.update({kind: memory_widths[kind] for kind in ENCODED_TYPES if kind in spec.types})
        text_tokens = int((memory.get("text_encoder") or {}).get("n_tokens", 1))
        shapes["text"] = (frames * text_tokens, dims.get("text", 0))
        shapes["clip_vision"] = (frames, dims.get("clip_vision", 0))
    order = ("text", "region", "region_token", "clip_vision")
    # per-block caches (vision, per-layer region tokens) get their shapes from the network
    memory_shapes = {k: shapes[k] for k in order if k in spec.types and not spec.per_block(k)}
    options = {
        "memory_dims": dims,
        "memory_shapes": memory_shapes,
        "text_encoder": text_encoder,
        "clip_vision_encoder": clip_vision_encoder,
        **vision_options(memory),
    }
    if isinstance(task, DetectionTask):
        kind = head_cfg.pop("kind", "roi")
        if kind not in BOX_HEADS:
            raise ValueError(f"model.head.kind: expected one of {sorted(BOX_HEADS)}, got {kind!r}")
        head = BOX_HEADS[kind](backbone.out_dim, task.num_classes, **head_cfg)
        return TinyMemDetector(backbone, head, spec, **options)
    if "region" in spec.types:
        raise ConfigError(
            "memory.plan: region (RoI) memory needs person boxes; clip classification "
            "uses region_token memory (letter G) instead"
        )
    for key in CLASSIFIER_DROPS:
        head_cfg.pop(key, None)
    head = MultiTaskHead(backbone.out_dim, dict(task.outputs), **head_cfg)
    return TinyMemClassifier(backbone, head, spec, **options)

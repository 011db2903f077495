"""Memory plans: which attention blocks read which memory type, parsed and validated from config."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Plan letters -> memory type (one letter per block that reads memory).
PLAN_LETTERS: dict[str, str] = {
    "T": "text",  # CLIP text tokens of the frame captions
    "R": "region",  # RoI features of the person boxes
    "G": "region_token",  # outputs of learned global tokens
    "V": "vision",  # MeMViT: the block's own compressed keys/values of past clips
    "C": "clip_vision",  # CLIP image embeddings of the frames
}
# Memory kinds selectable with `memory=<kind>`; `auto` plans are derived from them.
KINDS: tuple[str, ...] = (
    "none",
    "vision",
    "text",
    "region",
    "region_token",
    "clip_vision",
    "text+region",
    "text+region_token",
)
# memory.readout.groups value: one P_k/P_v conv group per attention head of the reading block.
READOUT_HEAD_GROUPS = "heads"
# Types with one token per frame: with `memory.frame_time` each token's relative-position term
# uses its frame's time; the other types' tokens (region, region_token, vision) use their clip's.
FRAME_TIMED_TYPES: tuple[str, ...] = ("text", "clip_vision")
# memory.source_block value: each region_token block writes its own output global tokens
# (section 3.2: "the output global tokens on the corresponding layer").
PER_LAYER_SOURCE = "layer"
# Types whose memory tokens depend on the block that reads them (one cache per block).
PER_BLOCK_TYPES: tuple[str, ...] = ("vision",)
# text+region_token plans (EK-100, Breakfast): this fraction of the selected blocks reads text.
TEXT_FRACTION_WITH_REGION_TOKENS = 0.25


class ConfigError(ValueError):
    """A config value has the wrong type or range; the message names the key."""


@dataclass(frozen=True)
class MemorySpec:
    """Validated memory settings: the per-block plan and the cache sampling (length l, stride s)."""

    kind: str
    layers: tuple[int, ...]  # attention blocks that read memory, ascending
    plan: str  # one letter of PLAN_LETTERS per entry of `layers`
    length: int  # l: entries read per step
    stride: int  # s: temporal stride between read entries (clips t-s, ..., t-l*s)
    n_region: int  # region tokens written per clip (RoI: padded with a mask; global tokens)
    source_block: int | None  # block whose output global tokens are the region_token memory
    # (None: per layer, each region_token block caches its own block's output global tokens)
    region_block: int | None  # region (RoI) memory: block whose output grid is RoI-pooled
    # (None: the detection head's RoI features of the last block, the paper's)
    readout_kernel: int  # kernel of the P_k/P_v group conv over memory tokens
    readout_stride: int  # stride of that conv (token compression factor)
    readout_groups: int | str  # groups of that conv: a count, or "heads" (one per head)
    frame_time: bool = False  # text / clip_vision tokens carry their frame's time (appendix A)

    @property
    def cache_size(self) -> int:
        """L_c = l * s: the FIFO capacity in clips."""
        return self.length * self.stride

    @property
    def types(self) -> tuple[str, ...]:
        """Memory types the plan uses, in a stable order."""
        used = {PLAN_LETTERS[letter] for letter in self.plan}
        return tuple(t for t in PLAN_LETTERS.values() if t in used)

    def layer_types(self) -> dict[int, str]:
        """Map block index -> memory type for every block that reads memory."""
        return {
            layer: PLAN_LETTERS[letter]
            for layer, letter in zip(self.layers, self.plan, strict=True)
        }

    def per_block(self, kind: str) -> bool:
        """Whether each block reading `kind` has its own cache (vision; per-layer region tokens)."""
        return kind in PER_BLOCK_TYPES or (kind == "region_token" and self.source_block is None)

    def cache_names(self) -> dict[int, str]:
        """Map block index -> the cache it reads: the type, or `<type>@<block>` per block."""
        return {
            layer: f"{kind}@{layer}" if self.per_block(kind) else kind
            for layer, kind in self.layer_types().items()
        }


def _require_int(cfg: Mapping[str, Any], key: str, minimum: int, prefix: str) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{prefix}.{key}: expected an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{prefix}.{key}: expected an integer >= {minimum}, got {value}")
    return value


def select_layers(depth: int, fraction: float) -> tuple[int, ...]:
    """Evenly spaced blocks covering `fraction` of `depth` (0.5 of 16 -> 0, 2, ..., 14)."""
    count = round(fraction * depth)
    return tuple(math.floor(i * depth / count) for i in range(count)) if count else ()


def auto_plan(kind: str, num_layers: int) -> str:
    """Default plan of a memory kind: text everywhere but region on the last selected block."""
    if kind == "none" or num_layers == 0:
        return ""
    if kind == "text":
        return "T" * num_layers
    if kind == "text+region":
        return "T" * (num_layers - 1) + "R"
    if kind == "text+region_token":
        if num_layers == 1:
            return "G"
        num_text = min(max(1, round(TEXT_FRACTION_WITH_REGION_TOKENS * num_layers)), num_layers - 1)
        return "T" * num_text + "G" * (num_layers - num_text)
    letter = {v: k for k, v in PLAN_LETTERS.items()}[kind]
    return letter * num_layers


def parse_memory_spec(cfg: Mapping[str, Any], depth: int, prefix: str = "memory") -> MemorySpec:
    """Validate the `memory` config group against a backbone of `depth` blocks.

    `source_block` (region_token memory) and `region_block` (region memory; null: the head's RoI
    features) may be negative (-1 = the last block).
    """
    kind = cfg.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{prefix}.kind: expected one of {list(KINDS)}, got {kind!r}")
    fraction = cfg.get("layer_fraction")
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not 0 <= fraction <= 1
    ):
        raise ConfigError(f"{prefix}.layer_fraction: expected a number in [0, 1], got {fraction!r}")
    layers_cfg = cfg.get("layers")
    if layers_cfg is None:
        layers = select_layers(depth, float(fraction)) if kind != "none" else ()
    else:
        if not isinstance(layers_cfg, Sequence) or isinstance(layers_cfg, str):
            raise ConfigError(f"{prefix}.layers: expected a list of block indices or null")
        layers = tuple(layers_cfg)
        bad = [i for i in layers if not isinstance(i, int) or not 0 <= i < depth]
        if bad or list(layers) != sorted(set(layers)):
            raise ConfigError(
                f"{prefix}.layers: expected distinct ascending block indices in [0, {depth}), "
                f"got {list(layers)}"
            )
    plan = cfg.get("plan", "auto")
    if not isinstance(plan, str):
        raise ConfigError(f"{prefix}.plan: expected a string of letters or 'auto', got {plan!r}")
    if plan == "auto":
        plan = auto_plan(kind, len(layers))
    plan = plan.upper()
    for position, letter in enumerate(plan):
        if letter not in PLAN_LETTERS:
            valid = ", ".join(f"{k} ({v})" for k, v in PLAN_LETTERS.items())
            raise ConfigError(
                f"{prefix}.plan: unknown letter {letter!r} at position {position}; "
                f"valid letters: {valid}"
            )
    if kind == "none" and plan:
        raise ConfigError(f"{prefix}.plan: must be empty for kind 'none', got {plan!r}")
    if len(plan) != len(layers):
        raise ConfigError(
            f"{prefix}.plan: has {len(plan)} letters but {len(layers)} blocks are selected "
            f"({list(layers)}); give one letter per selected block"
        )
    readout = cfg.get("readout") or {}
    source = cfg.get("source_block", -1)
    per_layer = source == PER_LAYER_SOURCE
    if not per_layer and (
        isinstance(source, bool) or not isinstance(source, int) or not -depth <= source < depth
    ):
        raise ConfigError(
            f"{prefix}.source_block: expected {PER_LAYER_SOURCE!r} or a block index in "
            f"[-{depth}, {depth}), got {source!r}"
        )
    region = cfg.get("region_block")
    if region is not None and (
        isinstance(region, bool) or not isinstance(region, int) or not -depth <= region < depth
    ):
        raise ConfigError(
            f"{prefix}.region_block: expected null or a block index in [-{depth}, {depth}), "
            f"got {region!r}"
        )
    frame_time = cfg.get("frame_time", False)
    if not isinstance(frame_time, bool):
        raise ConfigError(f"{prefix}.frame_time: expected true or false, got {frame_time!r}")
    return MemorySpec(
        kind=kind,
        layers=layers,
        plan=plan,
        length=_require_int(cfg, "length", 1, prefix),
        stride=_require_int(cfg, "stride", 1, prefix),
        n_region=_require_int(cfg, "n_region", 1, prefix),
        source_block=None if per_layer else source % depth,
        region_block=None if region is None else region % depth,
        readout_kernel=_require_int(readout, "kernel", 1, f"{prefix}.readout"),
        readout_stride=_require_int(readout, "stride", 1, f"{prefix}.readout"),
        readout_groups=(
            READOUT_HEAD_GROUPS
            if readout.get("groups") == READOUT_HEAD_GROUPS
            else _require_int(readout, "groups", 1, f"{prefix}.readout")
        ),
        frame_time=frame_time,
    )

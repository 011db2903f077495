"""Reading published checkpoints and loading them strictly, with clear errors."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

# Keys under which training frameworks nest the weights (SlowFast, VideoMAE, Lightning, ...).
NESTED_STATE_KEYS = ("model_state", "model", "module", "state_dict")
MAX_KEYS_LISTED = 20
FORCE_WEIGHTS_ONLY = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"  # torch reads it at every load
REASON_CHARS = 160  # characters of torch's own message quoted in an error
# How torch names a callable or class a weights-only load refused ("... GLOBAL posix.system").
REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


class CheckpointError(ValueError):
    """A checkpoint does not fit the model; the message lists the offending keys."""


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_KEYS_LISTED])
    more = len(keys) - MAX_KEYS_LISTED
    return f"[{shown}{f', ... (+{more} more)' if more > 0 else ''}]"


def load_file(path: str | PathLike[str], what: str = "checkpoint") -> Any:
    """`torch.load` a file weights-only (tensors and plain containers: never code), on CPU.

    Every failure is a `CheckpointError` naming the file: missing, not a PyTorch file at all
    (random bytes, truncated, text), or holding Python objects a weights-only load refuses (a
    pickled callable, a class instance); the last is never retried unsafely.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no {what} file there")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets a message naming it
        text = str(e)
        refused = REFUSED_GLOBAL.search(text)
        if refused:
            raise CheckpointError(
                f"{path}: refused: the {what} holds Python objects other than tensors and plain "
                f"containers (it names {refused.group(1)}); tinymem loads weights only and "
                "never runs code from a file"
            ) from None
        if path.stat().st_size == 0:
            reason = "the file is empty"
        elif "Weights only load failed" in text:  # torch's advice after it is not repeated
            reason = "its bytes are not a pickled PyTorch object"
        else:
            reason = f"{type(e).__name__}: {text.split('. ')[0][:REASON_CHARS]}"
        raise CheckpointError(
            f"{path}: not a PyTorch {what} file (unreadable, truncated or another format: {reason})"
        ) from None


@contextmanager
def weights_only_loads() -> Iterator[None]:
    """Force every `torch.load` inside (third-party builders: torchvision) to load weights only."""
    previous = os.environ.get(FORCE_WEIGHTS_ONLY)
    os.environ[FORCE_WEIGHTS_ONLY] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[FORCE_WEIGHTS_ONLY]
        else:
            os.environ[FORCE_WEIGHTS_ONLY] = previous


def read_state_dict(path: str | PathLike[str]) -> dict[str, Tensor]:
    """Read a checkpoint file and unwrap the usual nesting to a flat tensor state dict."""
    path = Path(path)
    state = load_file(path)
    while isinstance(state, Mapping):
        nested = next((k for k in NESTED_STATE_KEYS if isinstance(state.get(k), Mapping)), None)
        if nested is None:
            break
        state = state[nested]
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (possibly nested)")
    return dict(state)


def load_strict(module: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """Load every key, or fail listing missing/unexpected keys and shape mismatches."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if state_dict[k].shape != own[k].shape
    )
    problems = []
    if missing:
        problems.append(f"missing keys {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listing(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches (checkpoint vs model) {_listing(mismatched)}")
    if problems:
        raise CheckpointError(
            f"{source} does not fit {type(module).__name__}: " + "; ".join(problems)
        )
    module.load_state_dict(state_dict, strict=True)


# SlowFast / MeMViT MViTv2 key names -> tinymem's (= torchvision's) names, applied in order.
SLOWFAST_MVIT_RENAMES = (
    (re.compile(r"^patch_embed\.proj\."), "conv_proj."),
    (re.compile(r"^cls_token$"), "pos_encoding.class_token"),
    (re.compile(r"\.attn\.proj\."), ".attn.project.0."),
    (re.compile(r"\.attn\.pool_([qkv])\.weight$"), r".attn.pool_\1.pool.weight"),
    (re.compile(r"\.attn\.norm_([qkv])\."), r".attn.pool_\1.norm_act.0."),
    (re.compile(r"\.mlp\.fc1\."), ".mlp.0."),
    (re.compile(r"\.mlp\.fc2\."), ".mlp.3."),
    (re.compile(r"^(blocks\.\d+)\.proj\."), r"\1.project."),
    (re.compile(r"^head\.projection\."), "head.1."),
)
# MeMViT's own memory modules (compression, memory rel-pos tables, box blocks).
MEMVIT_MEMORY_KEY = re.compile(
    r"^box_blocks\.|\.attn\.(norm_)?compress_[kv]\.|\.attn\.rel_pos_mem_[thw]$"
)


def is_slowfast_mvit(state_dict: Mapping[str, Tensor]) -> bool:
    """Whether a state dict uses SlowFast/MeMViT MViT key names (`patch_embed.proj`, ...)."""
    return "patch_embed.proj.weight" in state_dict


def memvit_memory_keys(state_dict: Mapping[str, Tensor]) -> list[str]:
    """Keys of MeMViT's dense-memory modules, which have no counterpart in tinymem."""
    return sorted(k for k in state_dict if MEMVIT_MEMORY_KEY.search(k))


def convert_slowfast_mvit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a SlowFast/MeMViT MViTv2 state dict to tinymem's MViT backbone names.

    Mapping (SlowFast -> tinymem): `patch_embed.proj` -> `conv_proj`; `cls_token` [1, 1, C] ->
    `pos_encoding.class_token` [C]; per block `attn.proj` -> `attn.project.0`,
    `attn.pool_{q,k,v}` -> `attn.pool_{q,k,v}.pool`, `attn.norm_{q,k,v}` ->
    `attn.pool_{q,k,v}.norm_act.0`, `mlp.fc1`/`mlp.fc2` -> `mlp.0`/`mlp.3`, `proj` -> `project`;
    `head.projection` -> `head.1`. `attn.qkv`, `attn.q/k/v` (pool-first), `attn.rel_pos_{h,w,t}`,
    `norm1`, `norm2` and `norm` keep their names. Any other key is passed through unchanged, so
    a strict load lists it.
    """
    converted = {}
    for key, value in state_dict.items():
        new = key
        for pattern, replacement in SLOWFAST_MVIT_RENAMES:
            new = pattern.sub(replacement, new)
        if new == "pos_encoding.class_token":
            value = value.reshape(-1)  # [1, 1, C] -> [C]
        if new in converted:
            raise CheckpointError(f"SlowFast keys map twice onto {new!r} (from {key!r})")
        converted[new] = value
    return converted

"""Reading published checkpoints and loading them strictly, with clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import torch
from torch import Tensor, nn

# Keys under which training frameworks nest the weights (SlowFast, VideoMAE, Lightning, ...).
NESTED_STATE_KEYS = ("model_state", "model", "module", "state_dict")
MAX_KEYS_LISTED = 20


class CheckpointError(ValueError):
    """A checkpoint does not fit the model; the message lists the offending keys."""


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_KEYS_LISTED])
    more = len(keys) - MAX_KEYS_LISTED
    return f"[{shown}{f', ... (+{more} more)' if more > 0 else ''}]"


def read_state_dict(path: str | PathLike[str]) -> dict[str, Tensor]:
    """Read a checkpoint file and unwrap the usual nesting to a flat tensor state dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint file there")
    state = torch.load(path, map_location="cpu", weights_only=False)
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

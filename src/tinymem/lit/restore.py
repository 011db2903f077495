"""Rebuilding a trained LightningModule from a tinymem checkpoint, safely and self-contained.

A checkpoint is read weights-only (tensors and plain containers: no code runs), its stored
hyperparameters are checked against the `_target_` allowlist, and the module is rebuilt with
every initial-weights path cleared (`model.backbone.pretrained`, the frozen text and CLIP image
towers' `pretrained`): all weights, frozen towers included, come from the checkpoint's state
dict, so a checkpoint copied to another machine runs there alone.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

import pytorch_lightning as pl

from tinymem.models.checkpoints import CheckpointError, load_file, load_strict
from tinymem.targets import check_targets

ModuleT = TypeVar("ModuleT", bound=pl.LightningModule)
HPARAMS_KEY = "hyper_parameters"
# Hyperparameters that name a file of initial weights, read only when training starts.
INITIAL_WEIGHTS = (
    ("backbone", "pretrained"),
    ("memory", "text_encoder", "pretrained"),
    ("memory", "clip_vision", "pretrained"),
)
# Frozen towers whose `pretrained` is a folder also holding the tokenizer and architecture.
TOWER_FOLDER_KINDS = ("t5",)


def read_checkpoint(path: str | PathLike[str]) -> dict[str, Any]:
    """Read a Lightning checkpoint weights-only and check its hyperparameters' targets.

    Raises `CheckpointError` naming the file when it is missing, not a checkpoint, holds code,
    or lacks the state dict / hyperparameters tinymem writes; `ConfigError` naming the key when
    a stored config names a target outside the allowlist. Nothing is built before these checks.
    """
    checkpoint = load_file(path)
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no state_dict entry)")
    hparams = checkpoint.get(HPARAMS_KEY)
    if not isinstance(hparams, Mapping):
        raise CheckpointError(
            f"{path}: no {HPARAMS_KEY} entry: not a checkpoint written by `python -m tinymem.train`"
        )
    check_targets(dict(checkpoint), f"{path}")
    return dict(checkpoint)


def _without_initial_weights(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the hyperparameters with every initial-weights file path set to None."""
    cleared = copy.deepcopy(dict(hparams))
    for keys in INITIAL_WEIGHTS:
        node = cleared
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or node.get(keys[-1]) is None:
            continue
        if node.get("kind") in TOWER_FOLDER_KINDS:
            continue  # tokenizer and architecture come from that folder; weights still loaded
        node[keys[-1]] = None
    return cleared


def restore_module(
    cls: type[ModuleT], checkpoint: Mapping[str, Any], source: str | Path, **overrides: Any
) -> ModuleT:
    """Build `cls` from a checkpoint read by `read_checkpoint` and load its weights strictly.

    `overrides` replace stored hyperparameters (optimizer=None, output_dir, eval_files, ...).
    Hyperparameters `cls` does not take mean another module wrote the checkpoint: an error.
    """
    hparams = _without_initial_weights(checkpoint[HPARAMS_KEY])
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    foreign = sorted(set(hparams) - accepted)
    if foreign:
        raise CheckpointError(
            f"{source}: hyperparameters {foreign} are not arguments of {cls.__name__}: the "
            "checkpoint was written for another task (detection vs classification)"
        )
    module = cls(**{**hparams, **overrides})
    module.on_load_checkpoint(dict(checkpoint))
    load_strict(module, checkpoint["state_dict"], str(source))
    return module

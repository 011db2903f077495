"""Local CLIP checkpoints: which activation their weights need, checked before they are loaded.

OpenAI's released CLIP weights were trained with QuickGELU; open_clip's plain model configs
(``ViT-B-16``, ``ViT-L-14``, ...) build GELU towers and ``<name>-quickgelu`` the QuickGELU ones.
The weights of both load into either tower without error, and the wrong pairing silently gives
wrong embeddings. :func:`create_clip` reads what the file says about its provenance and fails
with a message naming the right ``model_name`` when the two disagree:

- an OpenAI release (a TorchScript archive, as ``ViT-B-16.pt``) or a state dict taken from one
  (it keeps OpenAI's ``input_resolution`` / ``context_length`` / ``vocab_size`` entries): QuickGELU;
- a file next to an ``open_clip_config.json`` (Hugging Face hub layout): that config's
  ``quick_gelu``;
- any other file (a plain open_clip state dict): unknown, the model name decides.
"""

from __future__ import annotations

import json
import logging
import warnings
import zipfile
from pathlib import Path
from typing import Any

import open_clip
import torch
from torch import nn

from tinymem.memory.plan import ConfigError

log = logging.getLogger(__name__)

OPENAI_MARKER_KEYS = ("input_resolution", "context_length", "vocab_size")  # OpenAI-only entries
QUICKGELU_SUFFIX = "-quickgelu"  # open_clip's name suffix of the QuickGELU configs
SIDECAR_CONFIG = "open_clip_config.json"  # Hugging Face hub open_clip repos ship one
TORCHSCRIPT_ENTRY = "constants.pkl"  # present in every TorchScript zip archive


def is_torchscript(path: Path) -> bool:
    """Whether `path` is a TorchScript archive (the form of OpenAI's released .pt files)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith(f"/{TORCHSCRIPT_ENTRY}") for name in archive.namelist())


def read_openai_state(path: Path) -> dict[str, Any] | None:
    """The state dict of an OpenAI-form checkpoint without its marker entries, else None."""
    if is_torchscript(path):
        with warnings.catch_warnings():
            # torch deprecates TorchScript, but OpenAI's CLIP weights are released as archives
            warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", FutureWarning)
            state = torch.jit.load(str(path), map_location="cpu").state_dict()
    elif zipfile.is_zipfile(path):  # torch.save's format: peek at the keys
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict) or not any(k in state for k in OPENAI_MARKER_KEYS):
            return None
    else:
        return None
    return {k: v for k, v in state.items() if k not in OPENAI_MARKER_KEYS}


def sidecar_quick_gelu(path: Path) -> bool | None:
    """`quick_gelu` of the `open_clip_config.json` beside `path` (None: no such file)."""
    sidecar = path.parent / SIDECAR_CONFIG
    if not sidecar.is_file():
        return None
    config = json.loads(sidecar.read_text())
    return bool(config.get("model_cfg", config).get("quick_gelu", False))


def uses_quick_gelu(model_name: str) -> bool:
    """Whether open_clip's config `model_name` builds QuickGELU towers."""
    config = open_clip.get_model_config(model_name)
    if config is None:
        raise ConfigError(f"open_clip has no model config named {model_name!r}")
    return bool(config.get("quick_gelu", False))


def matching_name(model_name: str, quick_gelu: bool) -> str:
    """The open_clip config name with the other activation (``X`` <-> ``X-quickgelu``)."""
    if quick_gelu:
        return model_name + QUICKGELU_SUFFIX
    return model_name.removesuffix(QUICKGELU_SUFFIX)


def create_clip(model_name: str, pretrained: str | None, key: str) -> nn.Module:
    """open_clip model `model_name` with the local weights `pretrained` (None: random weights).

    `key` is the config prefix named in errors (e.g. ``memory.text_encoder``). Raises
    ConfigError when the file's provenance needs the other activation than `model_name` builds.
    """
    if pretrained is None:
        return open_clip.create_model(model_name)
    path = Path(pretrained)
    if not path.is_file():
        raise FileNotFoundError(
            f"{key}.pretrained: no file at {pretrained!r}; give a local "
            "open_clip/OpenAI CLIP checkpoint path (nothing is downloaded)"
        )
    openai_state = read_openai_state(path)
    needs_quick = True if openai_state is not None else sidecar_quick_gelu(path)
    builds_quick = uses_quick_gelu(model_name)
    if needs_quick is not None and needs_quick != builds_quick:
        source = "OpenAI CLIP weights" if openai_state is not None else f"{SIDECAR_CONFIG} says"
        wanted = "QuickGELU" if needs_quick else "GELU"
        built = "QuickGELU" if builds_quick else "GELU"
        raise ConfigError(
            f"{key}.model_name={model_name!r} builds a {built} tower, but {pretrained} holds "
            f"{source} trained with {wanted}: set {key}.model_name="
            f"{matching_name(model_name, needs_quick)}"
        )
    if needs_quick is None:
        log.info(
            "%s.pretrained %s does not say which activation it was trained with; using %s's (%s)",
            key,
            pretrained,
            model_name,
            "QuickGELU" if builds_quick else "GELU",
        )
    if openai_state is None:
        return open_clip.create_model(model_name, pretrained=pretrained)
    model = open_clip.create_model(model_name)
    # buffers the model rebuilds itself (a scripted module saves them, e.g. attn_mask)
    rebuilt = {name for name, _ in model.named_buffers()} - set(model.state_dict())
    model.load_state_dict({k: v for k, v in openai_state.items() if k not in rebuilt})
    return model

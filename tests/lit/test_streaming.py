"""Streaming LightningModules: checkpoints with the encoders beside the network still load."""

from __future__ import annotations

import torch

from helpers.model import detection_module
from tinymem.lit.streaming import LEGACY_ENCODER_PREFIXES


def test_checkpoints_with_the_encoders_beside_the_network_still_load() -> None:
    saved = detection_module(seed=1).eval().state_dict()
    legacy = {}
    for key, value in saved.items():
        local = key.removeprefix("model.")
        legacy[local if local.startswith(LEGACY_ENCODER_PREFIXES) else key] = value
    assert any(key.startswith("text_encoder.") for key in legacy)  # the old layout
    module = detection_module(seed=2).eval()
    module.load_state_dict(legacy, strict=True)
    assert all(torch.equal(module.state_dict()[k], v) for k, v in saved.items())

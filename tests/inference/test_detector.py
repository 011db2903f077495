"""The person detector: its weights are never downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tinymem.inference.detector import PersonDetector
from tinymem.memory.plan import ConfigError


def test_detector_weights_never_download(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ConfigError, match="not in the torch hub cache"):
        PersonDetector("fasterrcnn_mobilenet_v3_large_320_fpn", "DEFAULT", 0.5, 4)
    with pytest.raises(ConfigError, match="detector.arch"):
        PersonDetector("yolo", None, 0.5, 4)

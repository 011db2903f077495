"""Strict checkpoint loading lists what does not fit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from tinymem.models.checkpoints import CheckpointError, load_strict, read_state_dict


def test_read_unwraps_nesting_and_load_strict_round_trip(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "model_state": net.state_dict()}, path)
    state = read_state_dict(path)
    other = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    load_strict(other, state, str(path))
    assert torch.equal(other[0].weight, net[0].weight)


def test_missing_unexpected_and_mismatched_keys_are_listed() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    state = {
        "0.weight": torch.zeros(4, 3),
        "0.bias": torch.zeros(5),
        "extra.weight": torch.zeros(1),
    }
    with pytest.raises(CheckpointError) as err:
        load_strict(net, state, "my.ckpt")
    message = str(err.value)
    assert "my.ckpt" in message
    assert "missing keys [1.bias, 1.weight]" in message
    assert "unexpected keys [extra.weight]" in message
    assert "0.bias (5,) vs (4,)" in message
    assert torch.count_nonzero(net[0].weight) > 0  # nothing was partially loaded


def test_missing_file_and_non_state_dict(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        read_state_dict(tmp_path / "none.pth")
    path = tmp_path / "bad.pth"
    torch.save({"model": {"w": "not a tensor"}}, path)
    with pytest.raises(CheckpointError, match="expected a state dict"):
        read_state_dict(path)

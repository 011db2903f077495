"""Clip transforms of the classification datasets (EK-100, Breakfast)."""

from __future__ import annotations

import pytest
import torch

from tinymem.data.clip_transforms import ClipAugment, build_clip_transform


def test_clip_transforms() -> None:
    clip = torch.randint(0, 256, (4, 3, 48, 64), dtype=torch.uint8)
    from torchvision import tv_tensors

    train = build_clip_transform(True, 32, (32, 40), 36, ClipAugment())
    out = train(tv_tensors.Video(clip))
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32
    evaluate = build_clip_transform(False, 32, (32, 40), 36)
    assert torch.equal(evaluate(tv_tensors.Video(clip)), evaluate(tv_tensors.Video(clip)))
    layers = [t for t in train.transforms if type(t).__name__ == "RandomApply"]
    assert len(layers) == 4 and all(layer.p == 0.5 for layer in layers)
    assert type(train.transforms[-1]).__name__ == "RandomErasing"
    with pytest.raises(ValueError, match="data.train_short_side"):
        build_clip_transform(True, 32, (24, 40), 36)
    with pytest.raises(ValueError, match="data.augment.rand_augment_magnitude"):
        ClipAugment(rand_augment_magnitude=11)

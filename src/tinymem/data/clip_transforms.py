"""Clip transforms of the Epic-Kitchens-100 / Breakfast recipe (appendix A) with transforms.v2.

Training: short side resized to a random size in ``short_side`` (inclusive), random square crop,
horizontal flip, then ``rand_augment_ops`` RandAugment layers each applied with probability
``rand_augment_p``, conversion to float, normalisation and random erasing (probability
``random_erasing_p``, normal-noise fill). Evaluation: short side resized to ``eval_short_side``,
centre crop. Every op acts on a ``tv_tensors.Video`` [T, 3, H, W], so all frames of a clip get
the same crop, flip, augmentation and erased box.

RandAugment magnitude follows the timm/SlowFast ``rand-m7-n4`` convention used by MeMViT's
Epic-Kitchens recipe: magnitude 7 on a 0..10 scale (``num_magnitude_bins = 11``), i.e. 7/10 of
each op's maximum, and each of the 4 layers applied with probability 0.5 (timm's per-op
probability). timm's magnitude noise (``mstd``) is not reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from tinymem.normalize import VIDEO_MEAN, VIDEO_STD

RANDOM_FILL = "random"  # random erasing fills the box with normal noise (SlowFast "pixel" mode)


@dataclass(frozen=True)
class ClipAugment:
    """Training-only augmentation strengths (appendix A: RandAugment n4 m7 p0.5, erasing 0.25)."""

    rand_augment_ops: int = 4  # RandAugment layers
    rand_augment_magnitude: int = 7  # magnitude bin of every layer ...
    rand_augment_bins: int = 11  # ... out of bins 0..bins-1 (11: timm's 0..10 scale)
    rand_augment_p: float = 0.5  # probability that each layer is applied
    random_erasing_p: float = 0.25  # probability of erasing one random box of the clip

    def __post_init__(self) -> None:
        """Check the ranges; messages name the data.augment key."""
        if self.rand_augment_ops < 0:
            raise ValueError(
                f"data.augment.rand_augment_ops: expected an integer >= 0, "
                f"got {self.rand_augment_ops}"
            )
        if self.rand_augment_bins < 2 or not 0 <= self.rand_augment_magnitude < (
            self.rand_augment_bins
        ):
            raise ValueError(
                f"data.augment.rand_augment_magnitude: expected 0 <= magnitude < "
                f"rand_augment_bins (>= 2), got {self.rand_augment_magnitude} of "
                f"{self.rand_augment_bins}"
            )
        for name in ("rand_augment_p", "random_erasing_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"data.augment.{name}: expected a number in [0, 1], got {getattr(self, name)}"
                )


def _check_sizes(crop_size: int, short_side: tuple[int, int], eval_short_side: int) -> None:
    """Raise unless crop_size <= every short side and the training range is ordered."""
    low, high = short_side
    if crop_size < 1:
        raise ValueError(f"data.crop_size: expected an integer >= 1, got {crop_size}")
    if not crop_size <= low <= high:
        raise ValueError(
            f"data.train_short_side: expected [min, max] with crop_size ({crop_size}) <= min "
            f"<= max, got {[low, high]}"
        )
    if eval_short_side < crop_size:
        raise ValueError(
            f"data.eval_short_side: expected >= crop_size ({crop_size}), got {eval_short_side}"
        )


def build_clip_transform(
    train: bool,
    crop_size: int,
    short_side: tuple[int, int],
    eval_short_side: int,
    augment: ClipAugment | None = None,
) -> v2.Transform:
    """Transform of a uint8 ``tv_tensors.Video`` [T, 3, H, W] into a normalised float clip.

    ``augment`` (training only) adds RandAugment and random erasing; None leaves them out.
    """
    low, high = short_side
    _check_sizes(crop_size, (low, high), eval_short_side)
    if not train:
        return v2.Compose(
            [
                v2.Resize(eval_short_side),
                v2.CenterCrop(crop_size),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(VIDEO_MEAN, VIDEO_STD),
            ]
        )
    steps: list[v2.Transform] = [
        v2.RandomResize(low, high + 1),  # short side uniform in [low, high]
        v2.RandomCrop(crop_size),
        v2.RandomHorizontalFlip(),
    ]
    if augment is not None:
        layer = v2.RandAugment(
            num_ops=1,
            magnitude=augment.rand_augment_magnitude,
            num_magnitude_bins=augment.rand_augment_bins,
        )
        steps += [
            v2.RandomApply([layer], p=augment.rand_augment_p)
            for _ in range(augment.rand_augment_ops)
        ]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(VIDEO_MEAN, VIDEO_STD)]
    if augment is not None and augment.random_erasing_p > 0:
        steps.append(v2.RandomErasing(p=augment.random_erasing_p, value=RANDOM_FILL))
    return v2.Compose(steps)

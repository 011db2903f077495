"""Clips finished on the device: the same pixels as the CPU transform."""

from __future__ import annotations

from pathlib import Path

import torch

from helpers.data import ava_clips
from tinymem.data.ava.dataset import AvaAugment, collate_keyframes
from tinymem.data.device_transform import finish_clips
from tinymem.normalize import VIDEO_MEAN, VIDEO_STD


def test_device_transform_equals_the_cpu_transform(tiny_world: Path) -> None:
    augment = AvaAugment(kind="ava", short_side=(40, 56))
    cpu = ava_clips(tiny_world, train=True, device_transform=False, augment=augment, crop_size=32)
    device = ava_clips(tiny_world, train=True, device_transform=True, augment=augment, crop_size=32)
    for index in range(6):
        torch.manual_seed(index)
        expected = cpu[index]
        after_cpu = torch.get_rng_state()
        torch.manual_seed(index)
        item = device[index]
        assert torch.equal(torch.get_rng_state(), after_cpu)  # the same random draws
        assert item["video"].dtype == torch.uint8 and item["video"].shape == (4, 32, 32, 3)
        assert not torch.isnan(item["color_jitter"]).any()
        batch = collate_keyframes([item, device._padding_item()])
        video = finish_clips(
            batch["video"], batch["color_jitter"], batch["valid"], VIDEO_MEAN, VIDEO_STD
        )
        assert torch.equal(video[0], expected["video"])  # bit for bit
        assert torch.equal(video[1], torch.zeros_like(video[1]))  # padding row
        assert torch.equal(item["boxes"], expected["boxes"])

"""Frame sources: JPEG folders (numbering, missing files) and video files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tinymem.data.epic_kitchens.synthetic import FRAME_PATTERN
from tinymem.data.frame_sources import JpegFolderSource
from tinymem.errors import DataFormatError


def test_jpeg_frames_are_numbered_from_one_and_missing_files_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "P01" / "rgb_frames" / "P01_01"
    folder.mkdir(parents=True)
    for number in range(1, 6):
        image = Image.new("RGB", (8, 8), (number * 40,) * 3)
        image.save(folder / f"frame_{number:010d}.jpg", quality=100)
    source = JpegFolderSource(
        tmp_path, FRAME_PATTERN, {"participant_id": "P01", "video_id": "P01_01"}
    )
    assert source.num_frames == 5
    frames = source.read([0, 4, 9])  # 9 is clamped to the last frame
    assert frames.shape == (3, 3, 8, 8)
    assert [int(f.float().mean().round()) for f in frames] == [40, 200, 200]
    (folder / "frame_0000000003.jpg").unlink()
    (folder / "frame_0000000006.jpg").write_bytes(b"")  # keep the count at 5
    with pytest.raises(DataFormatError, match="frame_0000000003.jpg"):
        source.read([2])


def test_jpeg_frames_are_decoded_at_reduced_size_when_the_target_allows(tmp_path: Path) -> None:
    generator = np.random.default_rng(0)
    folder = tmp_path / "v"
    folder.mkdir()
    for number in (1, 2):
        image = generator.integers(0, 256, (96, 160, 3), dtype=np.uint8)
        Image.fromarray(image).save(folder / f"v_{number:06d}.jpg", quality=90)
    source = JpegFolderSource(tmp_path, "v/v_{frame:06d}.jpg")
    full = source.read([0, 1])
    assert full.shape == (2, 3, 96, 160)
    assert torch.equal(source.read([0, 1], short_side=64), full)  # 96 < 2 x 64: full size
    half = source.read([1, 0], short_side=48)  # 96 >= 2 x 48: decoded at 1/2
    assert half.shape == (2, 3, 48, 80)
    with Image.open(folder / "v_000002.jpg") as image:
        image.draft("RGB", (80, 48))
        expected = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
    assert torch.equal(half[0], expected)
    assert source.read([0], short_side=20).shape == (1, 3, 24, 40)  # 1/4, not below 20

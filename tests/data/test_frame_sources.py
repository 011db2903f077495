"""Frame sources: JPEG folders (numbering, missing files) and video files."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tinymem.data.epic_kitchens.synthetic import (
    FRAME_PATTERN,
)
from tinymem.data.errors import DataFormatError
from tinymem.data.frame_sources import JpegFolderSource


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

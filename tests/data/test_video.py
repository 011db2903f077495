import numpy as np
import pytest
import torch

from tinymem.data.video import (
    VideoInfo,
    clip_frame_indices,
    probe_video,
    read_frames,
    write_video,
)
from tinymem.errors import DataFormatError

NUM_FRAMES = 20
SIZE = 32
FPS = 8
TOLERANCE = 6  # RGB -> yuv420p -> RGB on flat colours


def frame_colour(t: int) -> tuple[int, int, int]:
    return (12 * t, 250 - 12 * t, (40 + 70 * t) % 256)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    frames = np.zeros((NUM_FRAMES, SIZE, SIZE, 3), np.uint8)  # [T, H, W, 3]
    for t in range(NUM_FRAMES):
        frames[t] = frame_colour(t)
    path = tmp_path_factory.mktemp("video") / "colours.mp4"
    write_video(path, torch.from_numpy(frames), FPS)
    return path


def mean_colours(clip: torch.Tensor) -> np.ndarray:
    return clip.float().mean(dim=(1, 2)).numpy()  # [T, 3]


def test_probe(video):
    assert probe_video(video) == VideoInfo(fps=FPS, num_frames=NUM_FRAMES, width=SIZE, height=SIZE)


def test_read_frames_order_repeats_and_clamping(video):
    indices = [13, 2, 2, 19, 0, -4, 25, 7]
    clip = read_frames(video, indices)
    assert clip.dtype == torch.uint8 and clip.shape == (len(indices), SIZE, SIZE, 3)
    expected = [frame_colour(min(max(i, 0), NUM_FRAMES - 1)) for i in indices]
    assert np.abs(mean_colours(clip) - np.array(expected)).max() <= TOLERANCE


def test_read_frames_late_window_after_seek(video):
    clip = read_frames(video, [17, 15, 16])
    expected = [frame_colour(i) for i in (17, 15, 16)]
    assert np.abs(mean_colours(clip) - np.array(expected)).max() <= TOLERANCE


def test_read_frames_with_inter_frames(tmp_path):
    # a slowly moving bar gives P/B frames, so reads after a seek must decode from a keyframe
    frames = np.full((48, SIZE, SIZE, 3), 100, np.uint8)
    for t in range(48):
        frames[t, :, t % SIZE] = 250
    path = tmp_path / "bar.mp4"
    write_video(path, frames, FPS)
    clip = read_frames(path, [40, 33, 47])
    for got, t in zip(clip.numpy(), (40, 33, 47), strict=True):
        assert int(np.argmax(got[..., 0].mean(axis=0))) == t % SIZE


@pytest.mark.parametrize("reader", [probe_video, lambda p: read_frames(p, [0])])
def test_missing_and_corrupt_files(tmp_path, video, reader):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(DataFormatError, match="missing.mp4"):
        reader(missing)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01not a video" * 100)
    with pytest.raises(DataFormatError, match="garbage.mp4"):
        reader(garbage)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(DataFormatError, match="truncated.mp4"):
        reader(truncated)


def test_write_video_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "a.mp4", np.zeros((2, 8, 8, 3), np.float32), FPS)
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "b.mp4", np.zeros((2, 7, 8, 3), np.uint8), FPS)


def test_clip_frame_indices():
    assert clip_frame_indices(100, 4, 2, 1000) == [96, 98, 100, 102]  # range(c - 4, c + 4, 2)
    assert clip_frame_indices(1, 4, 2, 1000) == [0, 0, 1, 3]
    assert clip_frame_indices(9, 4, 2, 10) == [5, 7, 9, 9]
    assert clip_frame_indices(0, 3, 1, 1) == [0, 0, 0]
    assert len(clip_frame_indices(50, 3, 1, 100)) == 3  # odd L keeps num_frames entries
    with pytest.raises(ValueError):
        clip_frame_indices(0, 0, 1, 10)

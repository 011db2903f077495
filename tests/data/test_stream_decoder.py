"""Stream-order decoding gives read_frames' pixels, decoding each frame once per pass."""

from __future__ import annotations

import operator
import random
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from tinymem.config import compose_config
from tinymem.data.stream_decoder import StreamDecoder, upcoming_frames
from tinymem.data.video import clip_frame_indices, probe_video, read_frames

NUM_FRAMES = 96
HEIGHT, WIDTH = 48, 64


def encode_lossy(
    path: Path, rate: Fraction, gop: int, bframes: int, pts: list[int] | None = None
) -> Path:
    """A lossy x264 file (crf 23, like real datasets) of drifting noise; ``pts`` in ms = VFR."""
    container = av.open(str(path), "w")
    options = {"crf": "23", "g": str(gop), "bf": str(bframes), "preset": "veryfast"}
    stream = container.add_stream("libx264", rate=rate, options=options)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    stream.codec_context.time_base = Fraction(1, 1000) if pts else 1 / rate
    rng = np.random.default_rng(gop)
    base = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    for t in range(NUM_FRAMES):
        image = np.kron(np.roll(base, t, axis=1), np.ones((8, 8, 1), np.uint8)).astype(int)
        image = (image + rng.integers(-30, 30, image.shape)).clip(0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = t if pts is None else pts[t]
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    return path


VIDEOS = {  # name -> (frame rate, GOP, B-frames, VFR timestamps in ms)
    "gop12_bframes_30fps": (Fraction(30), 12, 3, None),
    "gop250_25fps": (Fraction(25), 250, 0, None),
    "gop30_ntsc": (Fraction(30000, 1001), 30, 2, None),
    "vfr": (Fraction(30), 20, 2, np.cumsum([0] + [33 if i % 7 else 90 for i in range(95)])),
}


@pytest.fixture(scope="module", params=sorted(VIDEOS))
def video(request, tmp_path_factory) -> Path:
    rate, gop, bframes, pts = VIDEOS[request.param]
    path = tmp_path_factory.mktemp("stream") / f"{request.param}.mp4"
    return encode_lossy(path, rate, gop, bframes, None if pts is None else pts.tolist())


def keyframe_clips(path: Path, num_frames: int = 16, rate: int = 4) -> list[list[int]]:
    """AVA-style clips: one per second of the video, clamped; 16x4 windows span 2+ seconds."""
    info = probe_video(path)
    step = round(info.fps)
    return [
        clip_frame_indices(center, num_frames, rate, info.num_frames)
        for center in range(0, info.num_frames + step, step)
    ]


def read_stream(decoder: StreamDecoder, clips: list[list[int]]) -> list[torch.Tensor]:
    """Read the clips in order, each telling the decoder the later clips' frames."""
    return [
        decoder.read(clip, upcoming_frames(clip, clips[k + 1 :])) for k, clip in enumerate(clips)
    ]


def test_stream_order_equals_read_frames_and_decodes_each_frame_once(video: Path) -> None:
    clips = keyframe_clips(video)
    decoder = StreamDecoder(video)
    for got, clip in zip(read_stream(decoder, clips), clips, strict=True):
        assert got.dtype == torch.uint8 and got.shape == (len(clip), HEIGHT, WIDTH, 3)
        assert torch.equal(got, read_frames(video, clip))
    assert decoder.seeks == 1  # opened once for the whole pass
    assert decoder.decoded <= NUM_FRAMES  # every frame at most once
    assert decoder._container is None  # the last clip (no upcoming frames) closed the file


def test_out_of_order_and_random_reads_equal_read_frames(video: Path) -> None:
    clips = keyframe_clips(video)
    generator = random.Random(0)
    order = list(range(len(clips)))
    generator.shuffle(order)
    decoder = StreamDecoder(video)
    for k in order:  # random access: the decoder seeks back when it has to
        assert torch.equal(decoder.read(clips[k], clips[0]), read_frames(video, clips[k]))
    for _ in range(5):  # any order, repeats, out of range
        indices = [generator.randint(-10, NUM_FRAMES + 10) for _ in range(7)]
        assert torch.equal(decoder.read(indices, [3]), read_frames(video, indices))


def test_a_long_jump_seeks_instead_of_decoding_everything(video: Path) -> None:
    decoder = StreamDecoder(video, max_skip=10)
    clips = [[0, 2, 4], [60, 62, 64], [66, 70]]
    got = read_stream(decoder, clips)
    assert decoder.seeks == 2  # (with GOP 250 the seek lands on frame 0 again)
    for frames, clip in zip(got, clips, strict=True):
        assert torch.equal(frames, read_frames(video, clip))


def test_a_resumed_stream_continues_with_the_same_frames(video: Path) -> None:
    clips = keyframe_clips(video)
    whole = read_stream(StreamDecoder(video), clips)
    resumed = StreamDecoder(video)  # a fresh process resuming at the 3rd clip
    for got, expected in zip(read_stream(resumed, clips[2:]), whole[2:], strict=True):
        assert torch.equal(got, expected)
    assert resumed.seeks == 1


def test_upcoming_frames_reach_every_overlapping_later_clip() -> None:
    clips = [[0, 4, 8], [3, 7, 11], [8, 12, 16], [12, 16, 20]]
    assert upcoming_frames(clips[0], clips[1:]) == [3, 7, 11, 8, 12, 16, 12, 16, 20]
    assert upcoming_frames(clips[2], clips[3:]) == [12, 16, 20]
    assert upcoming_frames(clips[3], []) == []


# ---------------------------------------------------------------------------------------------
# the clip datasets (EK-100, Breakfast) read their video files in stream order

EPIC_WORLD = ["num_train_videos=3", "num_val_videos=1", "write_frames=false"]
BREAKFAST_WORLD = ["subjects=[P03,P16,P29]", "activities=[cereals,tea]", "sil_frames=[2,4]"]
CLIP_WORLDS = {  # name -> (data config, its overrides: a tiny synthetic world, video files)
    "epic": ("synthetic_epic", ["data.source=video", *(f"data.synthetic.{o}" for o in EPIC_WORLD)]),
    "breakfast_subaction": ("synthetic_breakfast", ["data.task=subaction"]),
    "breakfast_activity": ("synthetic_breakfast", ["data.task=activity"]),
}
CLIP_WORLDS["breakfast_subaction"][1].extend(f"data.synthetic.{o}" for o in BREAKFAST_WORLD)
CLIP_WORLDS["breakfast_activity"][1].extend(f"data.synthetic.{o}" for o in BREAKFAST_WORLD)
CLIP_SIZES = ["data.crop_size=24", "data.train_short_side=[24,28]", "data.eval_short_side=24"]
CLIP_SIZES += ["data.batch_size=2", "data.synthetic.frame_size=32", "data.augment={}"]
RESUME_AT = 3  # training batches consumed before the simulated restart


def clip_datamodule(name: str, root: Path, stream_decode: bool, *extra: str):
    """The set-up datamodule of a tiny ``CLIP_WORLDS`` world in ``root`` (generated if missing)."""
    data, overrides = CLIP_WORLDS[name]
    cfg = compose_config(
        "train",
        [f"data={data}", f"data.root={root}", f"data.stream_decode={stream_decode}"]
        + overrides
        + CLIP_SIZES
        + list(extra),
    )
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup()
    return datamodule


def assert_same_batches(got: list[dict], expected: list[dict]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.keys() == b.keys()
        for key, value in a.items():
            same = torch.equal if isinstance(value, torch.Tensor) else operator.eq
            assert same(value, b[key]), key


@pytest.mark.parametrize("name", sorted(CLIP_WORLDS))
def test_clip_datasets_decode_in_stream_order_with_the_per_clip_pixels(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An epoch with ``stream_decode`` on and off gives the same batches; so do a resume and
    worker processes (each owning rows, so its decoders walk their videos forward)."""
    world = tmp_path_factory.getbasetemp() / f"clip_world_{CLIP_WORLDS[name][0]}"
    per_clip = clip_datamodule(name, world, stream_decode=False)
    torch.manual_seed(0)
    loader = per_clip.train_dataloader()
    expected, resume_state = [], None
    for step, batch in enumerate(loader):
        expected.append(batch)
        if step + 1 == RESUME_AT:
            resume_state = loader.batch_sampler.state_dict(RESUME_AT)
    assert len(expected) > RESUME_AT and resume_state is not None

    streamed = clip_datamodule(name, world, stream_decode=True)
    torch.manual_seed(0)
    assert_same_batches(list(streamed.train_dataloader()), expected)
    sources = streamed.datasets["train"].sources.values()
    for source in sources:  # one forward walk per video, each frame decoded at most once
        assert source.decoder.seeks == 1 and source.decoder.decoded <= source.num_frames

    resumed = clip_datamodule(name, world, stream_decode=True)
    resumed.resume_state = resume_state  # a restarted process continuing mid-epoch
    assert_same_batches(list(resumed.train_dataloader()), expected[RESUME_AT:])

    workers = clip_datamodule(name, world, True, "data.num_workers=2")
    assert_same_batches(list(workers.val_dataloader()), list(per_clip.val_dataloader()))

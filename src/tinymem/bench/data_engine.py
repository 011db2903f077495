"""The data engine study: stream-order decoding against per-clip decoding, stage by stage.

Workload (issue 19): AVA-layout training clips, ``num_frames`` frames every ``sample_rate``-th
around each keyframe second of 30 fps H.264 videos (lossy x264, crf 23, like real data sets),
generated once into ``root`` at each height and GOP length. Contenders run interleaved in one
process, ``rounds`` times each, and the fastest round counts (the least disturbed by others):

- ``decode-once``: the limit, one sequential pass decoding every frame from the first clip's
  first frame to the last clip's last one, converting each frame a clip uses to RGB once;
- ``per-clip``: :func:`tinymem.data.video.read_frames` per clip, as shipped (open, seek back,
  decode forward on FFmpeg's threads) plus the NHWC->NCHW copy the frame source made;
- ``engine``: :class:`tinymem.data.stream_decoder.StreamDecoder` in stream order;
- JPEG folders (the AVA layout): ``decode_jpeg`` of every frame against the reduced decode
  (PIL draft) at the training transform's largest short side.

Per-stage times (per clip, one thread): the CPU transform of the per-clip path (resize, crop,
flip, colour jitter, float, normalise, NCHW copy) and of the engine (resize, crop, flip on
uint8 channels-last, jitter draws), the IPC of one clip between processes (shared-memory
pickling, float32 NCHW against uint8 NHWC), and the device transform (jitter, float,
normalise of a batch, on CUDA when there is one). Then the training DataLoader end to end on an
AVA-layout world (see :mod:`tinymem.bench.data_pipeline`), and the machine's own scaling on the
same work as the loader's worker-count reference: ``n`` independent processes, each decoding its
share of the loader's videos with the engine (no loader, no IPC), against one process.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import queue
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torch.multiprocessing  # noqa: F401  (registers the shared-memory tensor pickling)
from torchvision import tv_tensors

from tinymem.bench.report import Row
from tinymem.data.ava.dataset import (
    AvaAugment,
    build_transform,
    color_jitter,
    resize_target,
)
from tinymem.data.ava.frames import AVA_FPS, ListedJpegFrames, frame_file
from tinymem.data.device_transform import finish_clips, jitter_params
from tinymem.data.stream_decoder import StreamDecoder, upcoming_frames
from tinymem.data.video import clip_frame_indices, read_frames
from tinymem.normalize import VIDEO_MEAN, VIDEO_STD

CRF = "23"  # x264's default quality: lossy, like real data sets
FIRST_KEYFRAME_SEC = 2  # keyframe seconds start here (AVA: 902 of a cut starting at 900) ...
LAST_KEYFRAME_MARGIN = 3  # ... and end this many seconds before the video does
JPEG_QUALITY = 90
SPAN_POLL_S = 1.0  # how often the scaling control checks its processes are alive


def video_path(root: Path, height: int, gop: int, index: int) -> Path:
    """Where the generated video of this height, GOP and index lives."""
    return root / f"h264_{height}p_gop{gop}" / f"v{index:02d}.mp4"


def write_test_video(path: Path, height: int, gop: int, seconds: int, seed: int) -> Path:
    """A lossy x264 file (crf 23, ``gop`` frames between keyframes) of a panning textured scene.

    A smooth random texture pans right while a second one slides down inside a moving
    window, plus mild per-frame noise: real-looking motion at a realistic bitrate. Written
    once; an existing file is kept.
    """
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    width = (height * 16 // 9) // 2 * 2
    generator = torch.Generator().manual_seed(seed)
    frames = seconds * AVA_FPS

    def texture(h: int, w: int) -> np.ndarray:
        coarse = torch.rand(1, 3, h // 16 + 2, w // 16 + 2, generator=generator)
        smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic")
        return (smooth[0].permute(1, 2, 0).clamp(0, 1) * 255).to(torch.uint8).numpy()

    background = texture(height, width + 2 * frames)
    sprite = texture(height + 2 * frames, width // 3)
    noise = np.random.default_rng(seed).integers(0, 12, (4, height, width, 3), dtype=np.uint8)
    tmp = path.with_suffix(".tmp.mp4")
    container = av.open(str(tmp), "w")
    options = {"crf": CRF, "g": str(gop), "preset": "veryfast"}
    stream = container.add_stream("libx264", rate=AVA_FPS, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.time_base = Fraction(1, AVA_FPS)
    for t in range(frames):
        image = background[:, 2 * t : 2 * t + width].copy()
        left = (t * 3) % (width - sprite.shape[1])
        image[:, left : left + sprite.shape[1]] = sprite[2 * t : 2 * t + height]
        image += noise[t % len(noise)]
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = t
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    tmp.rename(path)
    return path


def write_jpeg_frames(video: Path, frame_dir: Path, video_id: str) -> int:
    """Decode ``video`` into the AVA JPEG layout under ``frame_dir``; the frame count."""
    folder = frame_dir / video_id
    done = folder / "complete"
    if done.is_file():
        return int(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with av.open(str(video)) as container:
        for count, frame in enumerate(container.decode(video=0), start=1):
            frame.to_image().save(frame_dir / frame_file(video_id, count - 1), quality=JPEG_QUALITY)
    done.write_text(str(count))
    return count


def keyframe_clips(num_frames: int, sample_rate: int, seconds: int) -> list[list[int]]:
    """Frame indices of every keyframe clip of a video, in stream order."""
    total = seconds * AVA_FPS
    return [
        clip_frame_indices(sec * AVA_FPS, num_frames, sample_rate, total)
        for sec in range(FIRST_KEYFRAME_SEC, seconds - LAST_KEYFRAME_MARGIN + 1)
    ]


def decode_once(path: Path, clips: Sequence[Sequence[int]]) -> None:
    """The limit: one single-threaded pass from the first needed frame to the last, converting
    each needed frame to RGB once, then the clips stacked from those frames."""
    needed = sorted({i for clip in clips for i in clip})
    images: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        rate, base = Fraction(stream.average_rate), stream.time_base
        container.seek(int(Fraction(needed[0]) / rate / base), stream=stream, backward=True)
        wanted = set(needed)
        for frame in container.decode(stream):
            index = round(frame.pts * base * rate)
            if index in wanted:
                images[index] = frame.to_ndarray(format="rgb24")
            if index >= needed[-1]:
                break
    for clip in clips:
        np.stack([images[i] for i in clip])


def per_clip(path: Path, clips: Sequence[Sequence[int]]) -> None:
    """As shipped: read_frames per clip (FFmpeg threads AUTO), then the NCHW copy."""
    for clip in clips:
        read_frames(path, clip).permute(0, 3, 1, 2).contiguous()


def engine(path: Path, clips: Sequence[Sequence[int]]) -> None:
    """Stream-order decoding: each clip read telling the decoder the later clips' frames."""
    decoder = StreamDecoder(path)
    for k, clip in enumerate(clips):
        decoder.read(clip, upcoming_frames(clip, clips[k + 1 :]))


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(
    contenders: dict[str, Callable[[], Any]], rounds: int
) -> dict[str, tuple[float, float]]:
    """Each contender once per round, in turn; the fastest round (wall, its CPU) of each."""
    best: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for name, fn in contenders.items():
            result = timed(fn)
            if name not in best or result[0] < best[name][0]:
                best[name] = result
    return best


def decode_rows(
    root: Path,
    heights: Sequence[int],
    gops: Sequence[int],
    seconds: int,
    num_frames: int,
    sample_rate: int,
    short_side: int,
    rounds: int,
) -> list[Row]:
    """clips/s and clips per CPU-second of each decoder on each video kind (one video each)."""
    clips = keyframe_clips(num_frames, sample_rate, seconds)
    rows = []
    for height in heights:
        for gop in gops:
            path = write_test_video(video_path(root, height, gop, 0), height, gop, seconds, 0)
            contenders = {
                "decode-once": lambda p=path: decode_once(p, clips),
                "per-clip": lambda p=path: per_clip(p, clips),
                "engine": lambda p=path: engine(p, clips),
            }
            if gop == gops[-1]:  # JPEG frames of the same video (once per height)
                frame_dir = root / f"jpeg_{height}p"
                count = write_jpeg_frames(path, frame_dir, "v00")
                source = ListedJpegFrames(frame_dir, "v00", count)
                contenders["jpeg decode_jpeg"] = lambda s=source: [s.read(c) for c in clips]
                contenders["jpeg reduced"] = lambda s=source: [
                    s.read(c, short_side=short_side) for c in clips
                ]
            for name, (wall, cpu) in interleaved(contenders, rounds).items():
                video = f"{height}p GOP {gop}" if not name.startswith("jpeg") else f"{height}p"
                rows.append(
                    {
                        "study": "decode",
                        "video": video,
                        "contender": name,
                        "clips": len(clips),
                        "seconds": wall,
                        "cpu_seconds": cpu,
                        "clips_per_s": len(clips) / wall,
                        "clips_per_cpu_s": len(clips) / max(cpu, 1e-9),
                    }
                )
    return rows


def _decode_share(
    paths: Sequence[Path], clips: Sequence[Sequence[int]], barrier: Any, spans: Any
) -> None:
    """One process of the scaling control: after the barrier, the engine over ``paths``."""
    torch.set_num_threads(1)
    barrier.wait()
    start = time.perf_counter()
    for path in paths:
        engine(path, clips)
    spans.put((start, time.perf_counter()))


def parallel_decode(paths: Sequence[Path], clips: Sequence[Sequence[int]], processes: int) -> float:
    """Clips / s of ``processes`` forked processes decoding ``paths`` between them at once.

    Process ``j`` reads ``paths[j::processes]`` with the engine; the time runs from the first
    process's start to the last one's end (all start together, past a barrier).
    """
    context = multiprocessing.get_context("fork")  # what DataLoader workers use on Linux
    barrier, spans = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_decode_share, args=(paths[j::processes], clips, barrier, spans))
        for j in range(processes)
    ]
    for worker in workers:
        worker.start()
    times: list[tuple[float, float]] = []
    while len(times) < processes:  # a process that died without its span fails the run
        try:
            times.append(spans.get(timeout=SPAN_POLL_S))
        except queue.Empty:
            if any(w.exitcode not in (None, 0) for w in workers):
                for worker in workers:
                    worker.kill()
                raise RuntimeError("a decoding process of the scaling control failed") from None
    for worker in workers:
        worker.join()
    return len(paths) * len(clips) / (max(end for _, end in times) - min(s for s, _ in times))


def scaling_rows(
    paths: Sequence[Path], clips: Sequence[Sequence[int]], counts: Sequence[int], rounds: int
) -> list[Row]:
    """The machine's scaling control: clips / s of 1, 2, ... decoding processes (best round)."""
    best: dict[int, float] = {}
    for _ in range(rounds):
        for count in counts:
            best[count] = max(best.get(count, 0.0), parallel_decode(paths, clips, count))
    return [
        {"study": "scaling", "processes": count, "clips_per_s": rate}
        for count, rate in best.items()
    ]


def _ipc(clip: torch.Tensor) -> None:
    """Send a clip to another process and back in (shared-memory pickling, both ends here)."""
    buffer = io.BytesIO()
    ForkingPickler(buffer).dump(clip.clone())
    ForkingPickler.loads(buffer.getvalue())


def stage_rows(
    root: Path, height: int, gop: int, seconds: int, num_frames: int, sample_rate: int,
    crop_size: int, rounds: int,
) -> list[Row]:  # fmt: skip
    """Milliseconds per clip of each stage after decoding, per-clip path against the engine."""
    augment = AvaAugment(kind="ava")
    path = write_test_video(video_path(root, height, gop, 0), height, gop, seconds, 0)
    clip_ids = keyframe_clips(num_frames, sample_rate, seconds)[0]
    frames = read_frames(path, clip_ids)  # [T, H, W, 3]
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[10.0, 10.0, 100.0, 120.0]]), format="XYXY", canvas_size=frames.shape[1:3]
    )
    full = build_transform(True, crop_size, augment)
    geometric = build_transform(True, crop_size, augment, geometric_only=True)
    jitter = color_jitter(augment)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def old_transform() -> torch.Tensor:
        video = tv_tensors.Video(frames.permute(0, 3, 1, 2).contiguous())
        return full(video, boxes)[0].permute(1, 0, 2, 3).contiguous()  # [3, T, H, W] float

    def new_transform() -> torch.Tensor:
        clip = geometric(tv_tensors.Video(frames.permute(0, 3, 1, 2)), boxes)[0]
        jitter_params(jitter)
        return clip.as_subclass(torch.Tensor).permute(0, 2, 3, 1)  # [T, H, W, 3] uint8

    old_clip, new_clip = old_transform(), new_transform()
    params = jitter_params(jitter)[None]
    batch = new_clip[None].to(device)
    valid = torch.ones(1, dtype=torch.bool)

    def device_transform() -> None:
        finish_clips(batch, params, valid, VIDEO_MEAN, VIDEO_STD)
        if device.type == "cuda":
            torch.cuda.synchronize()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what a worker process runs with
    try:
        best = interleaved(
            {
                "CPU transform, per-clip path": old_transform,
                "CPU transform, engine (uint8 NHWC)": new_transform,
                "IPC float32 NCHW": lambda: _ipc(old_clip),
                "IPC uint8 NHWC": lambda: _ipc(new_clip.contiguous()),
                f"device transform ({device.type})": device_transform,
            },
            rounds + 1,
        )
    finally:
        torch.set_num_threads(threads)
    return [
        {"study": "stage", "video": f"{height}p GOP {gop}", "contender": name, "ms": wall * 1e3}
        for name, (wall, _) in best.items()
    ]


def short_side_of(crop_size: int) -> int:
    """The AVA training transform's largest short side (the reduced decode's floor)."""
    return resize_target(True, crop_size, AvaAugment(kind="ava"))


def ratio(value: float, reference: float) -> float:
    """value / reference (nan when the reference is 0)."""
    return value / reference if reference else math.nan

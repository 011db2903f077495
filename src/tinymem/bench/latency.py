"""Report 3: streaming latency per clip and training throughput, as ratios to no memory.

Each measured configuration is a `DetectionModule` (the training/evaluation code) whose memory
is full: its caches are first filled with l*s valid entries of the right shapes, then every
timed step runs `stream_step` (mask stale memory, read l entries of every cache, forward,
write this clip's entries, the oldest falling out). Configurations are timed alternately, one
step each per round, so load drifts hit them alike; the ratio to no memory is the median over
rounds of the per-round ratio. Captions are the same at every step, so the frozen text tower
runs only at the first step (embeddings are cached per caption, as in training and
evaluation); its cost per unique caption is measured on its own.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from tinymem.bench.models import BOXES_PER_CLIP, compose_train
from tinymem.bench.plots import plot_latency
from tinymem.bench.report import Grid, Report, Row, median_ratio, shown
from tinymem.data.ava.formats import AVA_NUM_ACTIONS
from tinymem.lit.detection import DetectionModule
from tinymem.models.build import plain
from tinymem.targets import instantiate

NO_MEMORY = "none"
INFERENCE_STAGE = "predict"
TRAIN_STAGE = "train"
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
MS = 1000.0


@dataclass(frozen=True)
class Setting:
    """Where and how the steps run."""

    device: torch.device
    batch: int  # streams side by side (clips per step)
    dtype: str | None  # autocast dtype name (None: float32 without autocast)
    compile: bool  # torch.compile the backbone (`model.compile`)
    warmup: int  # untimed rounds first
    repeats: int  # timed rounds (inference)
    train_repeats: int  # timed rounds (training)

    @property
    def name(self) -> str:
        """Short label: device, precision, batch, compilation."""
        precision = self.dtype or "fp32"
        compiled = ", compiled" if self.compile else ""
        return f"{self.device.type} {precision} batch {self.batch}{compiled}"

    def autocast(self) -> AbstractContextManager:
        """Mixed precision for the configured dtype (a no-op without one)."""
        dtype = DTYPES[self.dtype] if self.dtype else None
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)


@dataclass
class Stream:
    """One measured configuration: a module, its fixed batch and (for training) an optimizer."""

    memory: str
    length: int  # l (0 for no memory)
    module: DetectionModule
    batch: dict[str, Any]
    frames: int
    optimizer: torch.optim.Optimizer | None = None
    captions_encoded: int = 0  # unique captions made up so far (for the text tower timing)

    @property
    def label(self) -> str:
        """memory@l."""
        return f"{self.memory}@{self.length}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stream_batch(frames: int, crop: int, batch: int, device: torch.device) -> dict[str, Any]:
    """A streaming batch of `batch` rows that continue their videos (same captions each step)."""
    boxes = torch.tensor([[0.1, 0.1, 0.6, 0.9]], device=device)
    return {
        "video": torch.randn(batch, 3, frames, crop, crop, device=device),
        "boxes": boxes.expand(batch, BOXES_PER_CLIP, 4).contiguous(),
        "box_mask": torch.ones(batch, BOXES_PER_CLIP, dtype=torch.bool, device=device),
        "box_scores": torch.ones(batch, BOXES_PER_CLIP, device=device),
        "labels": torch.zeros(batch, BOXES_PER_CLIP, AVA_NUM_ACTIONS, device=device),
        "video_id": torch.arange(batch, device=device),
        "is_first": torch.zeros(batch, dtype=torch.bool, device=device),
        "valid": torch.ones(batch, dtype=torch.bool, device=device),
        "captions": [[f"a person stands in a room, frame {t}" for t in range(frames)]] * batch,
    }


def build_stream(
    overrides: Sequence[str], kind: str, length: int, setting: Setting, seed: int
) -> Stream:
    """The DetectionModule for `memory=<kind>` with l = `length`, on the setting's device."""
    cfg = compose_train([*overrides, f"memory={kind}"])
    torch.manual_seed(seed)
    module = DetectionModule(
        backbone=cfg.model.backbone,
        head=cfg.model.head,
        memory={**plain(cfg.memory), "length": max(length, 1)},
        class_ids=list(range(1, AVA_NUM_ACTIONS + 1)),
        compile=setting.compile,
    ).to(setting.device)
    frames, crop = int(cfg.model.backbone.num_frames), int(cfg.model.backbone.crop_size)
    batch = stream_batch(frames, crop, setting.batch, setting.device)
    stream = Stream(kind, length if kind != NO_MEMORY else 0, module, batch, frames)
    stream.optimizer = instantiate(cfg.model.optimizer)(
        params=[p for p in module.parameters() if p.requires_grad]
    )
    return stream


def fill_memory(stream: Stream, stage: str) -> None:
    """Empty the stage's memory, then write l*s valid entries of random tokens to every cache."""
    module = stream.module
    (module.on_train_epoch_start if stage == TRAIN_STAGE else module.on_predict_epoch_start)()
    memory = module.memories[stage]
    batch = stream.batch
    memory.begin_step(batch["video_id"], batch["is_first"])
    device = batch["video"].device
    rows = batch["video"].shape[0]
    valid = torch.ones(rows, dtype=torch.bool, device=device)
    for _ in range(module.spec.cache_size if module.spec.layers else 0):
        memory.write_entries(
            {
                name: (
                    torch.randn(rows, tokens, width, device=device),
                    torch.ones(rows, tokens, dtype=torch.bool, device=device),
                )
                for name, (tokens, width) in memory.entry_shapes.items()
            },
            valid,
        )


def inference_step(stream: Stream, setting: Setting) -> float:
    """Seconds of one streamed inference step (no gradients)."""
    stream.module.eval()
    _sync(setting.device)
    start = time.perf_counter()
    with torch.no_grad(), setting.autocast():
        stream.module.stream_step(stream.batch, INFERENCE_STAGE)
    _sync(setting.device)
    return time.perf_counter() - start


def train_step(stream: Stream, setting: Setting) -> float:
    """Seconds of one streamed training step: forward, BCE loss, backward, optimizer step."""
    module, batch, optimizer = stream.module, stream.batch, stream.optimizer
    assert optimizer is not None
    module.train()
    _sync(setting.device)
    start = time.perf_counter()
    with setting.autocast():
        out = module.stream_step(batch, TRAIN_STAGE)
        mask = batch["box_mask"]
        loss = F.binary_cross_entropy_with_logits(out.logits[mask].float(), batch["labels"][mask])
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    _sync(setting.device)
    return time.perf_counter() - start


def alternate(
    streams: Sequence[Stream],
    step: Callable[[Stream], float],
    warmup: int,
    repeats: int,
) -> dict[str, list[float]]:
    """Seconds per step of every stream over `repeats` rounds (one step each, in turn)."""
    times: dict[str, list[float]] = {s.label: [] for s in streams}
    for round_index in range(warmup + repeats):
        for stream in streams:
            seconds = step(stream)
            if round_index >= warmup:
                times[stream.label].append(seconds)
    return times


def caption_ms(stream: Stream, setting: Setting, rounds: int = 2) -> float | None:
    """Milliseconds the frozen text tower takes per new caption (None without text memory)."""
    encoder = stream.module.text_encoder
    if encoder is None:
        return None
    per_caption = []
    for _ in range(rounds):  # the first round warms the tower up
        stream.captions_encoded += 1
        captions = [[f"new caption {stream.captions_encoded} {t}" for t in range(stream.frames)]]
        _sync(setting.device)
        start = time.perf_counter()
        with setting.autocast():
            encoder(captions)
        _sync(setting.device)
        per_caption.append(MS * (time.perf_counter() - start) / stream.frames)
    return per_caption[-1]


def _rows(
    setting: Setting, mode: str, streams: Sequence[Stream], times: Mapping[str, list[float]]
) -> list[Row]:
    base = f"{NO_MEMORY}@0"
    rows = []
    for stream in streams:
        median = statistics.median(times[stream.label])
        rows.append(
            {
                "setting": setting.name,
                "mode": mode,
                "memory": stream.memory,
                "l": stream.length,
                "batch": setting.batch,
                "ms_per_clip": MS * median / setting.batch,
                "clips_per_s": setting.batch / median,
                "ratio_to_none": median_ratio(times, stream.label, base),
                "repeats": len(times[stream.label]),
            }
        )
    return rows


def measure_setting(
    overrides: Sequence[str],
    memories: Sequence[str],
    lengths: Sequence[int],
    train_lengths: Sequence[int],
    setting: Setting,
    seed: int,
) -> tuple[list[Row], float | None]:
    """Inference rows for every (memory, l), training rows for `train_lengths`, caption ms."""
    configs = [(NO_MEMORY, 0)] + [(m, n) for m in memories if m != NO_MEMORY for n in lengths]
    streams = {c: build_stream(overrides, c[0], c[1], setting, seed) for c in configs}
    for stream in streams.values():
        fill_memory(stream, INFERENCE_STAGE)
    inference = list(streams.values())
    times = alternate(
        inference, lambda s: inference_step(s, setting), setting.warmup, setting.repeats
    )
    rows = _rows(setting, "inference", inference, times)
    text_streams = [s for s in inference if s.module.text_encoder is not None]
    tower_ms = caption_ms(text_streams[0], setting) if text_streams else None
    del inference, text_streams  # only `streams` holds modules from here on
    if train_lengths and not setting.compile:
        wanted = [(NO_MEMORY, 0)] + [
            (m, n) for m in memories if m != NO_MEMORY for n in train_lengths
        ]
        for config in set(streams) - set(wanted):
            del streams[config]  # free the modules training does not use
        training = [
            streams.get(c) or build_stream(overrides, c[0], c[1], setting, seed) for c in wanted
        ]
        for stream in training:
            fill_memory(stream, TRAIN_STAGE)
        times = alternate(
            training, lambda s: train_step(s, setting), setting.warmup, setting.train_repeats
        )
        rows += _rows(setting, "training", training, times)
    return rows, tower_ms


def latency_settings(cfg: Mapping[str, Any], device: str) -> tuple[list[Setting], list[str]]:
    """The CPU and GPU settings `device` (auto | cpu | cuda) asks for, and notes on skipped ones."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected auto, cpu or cuda, got {device!r}")
    settings, notes = [], []

    def add(section: Mapping[str, Any], where: torch.device) -> None:
        for compile_ in section["compile"]:
            settings.append(
                Setting(
                    device=where,
                    batch=int(section["batch"]),
                    dtype=section.get("dtype"),
                    compile=bool(compile_),
                    warmup=int(section["warmup"]),
                    repeats=int(section["repeats"]),
                    train_repeats=int(section["train_repeats"]),
                )
            )

    if device in ("auto", "cpu"):
        add(cfg["cpu"], torch.device("cpu"))
    if device in ("auto", "cuda"):
        if torch.cuda.is_available():
            add(cfg["gpu"], torch.device("cuda"))
        elif device == "cuda":
            raise RuntimeError("device=cuda but no CUDA device is available")
        else:
            gpu = cfg["gpu"]
            notes.append(
                f"No CUDA device: the GPU rows ({gpu['dtype']} autocast, batch {gpu['batch']}, "
                f"torch.compile {list(gpu['compile'])}) were skipped."
            )
    return settings, notes


def latency_report(cfg: Mapping[str, Any], device: str, seed: int) -> Report:
    """Streaming latency and training throughput of every setting, memory kind and l."""
    settings, notes = latency_settings(cfg, device)
    rows: list[Row] = []
    for setting in settings:
        setting_rows, tower_ms = measure_setting(
            cfg["overrides"], cfg["memories"], cfg["lengths"], cfg["train_lengths"], setting, seed
        )
        rows += setting_rows
        if tower_ms is not None:
            notes.append(
                f"{setting.name}: the frozen text tower takes {tower_ms:.1f} ms per new caption "
                "(not in the per-clip times: embeddings are cached per caption)."
            )
    grid = Grid.of_rows(
        "Streaming time per clip with memory full (ratio to no memory: median of per-round ratios)",
        rows,
        *("setting", "mode", "memory", "l"),
        ("ms / clip", shown("ms_per_clip", ".1f")),
        ("clips / s", shown("clips_per_s", ".2f")),
        ("ratio to none", shown("ratio_to_none", ".3f")),
    )
    notes.insert(
        0,
        f"Model: {' '.join(cfg['overrides'])}; one person box per clip; memory full (l*s valid "
        "entries in every cache before timing; each step reads l entries and writes one); "
        f"{settings[0].warmup if settings else 0} warm-up round(s), then the configurations "
        "alternate one step at a time. Training = stream_step + BCE + backward + AdamW step.",
    )
    return Report("latency", rows, [grid], notes, plot_latency(rows) if rows else None)

"""Training and streaming-inference throughput and peak memory of one configuration at a time.

A configuration (memory kind, l, attention path) is the latency report's `DetectionModule` with
its memory full (`build_stream`, `fill_memory`), built alone on the device so the allocator's
peak belongs to it. Training = `DetectionModule.training_step` (stream_step + BCE) + backward +
AdamW step, as Lightning's automatic optimization runs it; inference = `stream_step` without
gradients. Steps run back to back after the warm-up and are timed as one block (CUDA events on
a GPU): the mean time per step. The first step is timed on its own: with `torch.compile` it
holds the compilation (compile time = first step - mean step).
"""

from __future__ import annotations

import dataclasses
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch._dynamo

from tinymem.bench.gpu.clock import (
    device_label,
    peak_memory_mib,
    reset_peak_memory,
    seconds_per_call,
    synchronize,
)
from tinymem.bench.latency import (
    INFERENCE_STAGE,
    NO_MEMORY,
    TRAIN_STAGE,
    Setting,
    Stream,
    build_stream,
    fill_memory,
    stream_batch,
)
from tinymem.bench.report import Row

MS = 1000.0
# DetectionModule.training_step logs its loss; without a Trainer, Lightning warns and skips it.
NO_TRAINER_LOG = re.escape("You are trying to `self.log()` but the `self.trainer` reference")


@dataclass(frozen=True)
class Config:
    """One measured configuration: memory kind, l (0 without memory), attention path."""

    memory: str
    length: int
    attention: str

    @property
    def label(self) -> str:
        """`<attention> <memory>@<l>`."""
        return f"{self.attention} {self.memory}@{self.length}"


@dataclass(frozen=True)
class Steps:
    """How a configuration is run: batch, autocast dtype, untimed and timed steps."""

    batch: int
    dtype: str | None  # autocast dtype name (None: float32)
    warmup: int
    repeats: int


def configurations(
    memories: Sequence[str],
    lengths: Sequence[int],
    attentions: Sequence[str],
    with_none: bool = True,
) -> list[Config]:
    """Per attention path: every memory kind at the first l, then none, then the other l."""
    configs = []
    for attention in attentions:
        for index, length in enumerate(lengths):
            configs += [Config(memory, length, attention) for memory in memories]
            if index == 0 and with_none:
                configs.append(Config(NO_MEMORY, 0, attention))
    return configs


def setting_of(device: torch.device, steps: Steps) -> Setting:
    """The latency report's `Setting` (device, batch, autocast) for these steps."""
    return Setting(device, steps.batch, steps.dtype, False, steps.warmup, steps.repeats, 0)


def build(
    overrides: Sequence[str],
    config: Config,
    device: torch.device,
    steps: Steps,
    seed: int,
    compile_backend: str | None = None,
) -> Stream:
    """The configuration's stream (module, batch, AdamW) on `device`; compiled with a backend.

    Compilation is `backbone.compile(backend=...)`: what `model.compile=true` does (with the
    default backend, inductor), the backend made explicit so a CPU dry run can use `eager`.
    """
    attention = f"model.backbone.attention={config.attention}"
    setting = setting_of(device, steps)
    stream = build_stream([*overrides, attention], config.memory, config.length, setting, seed)
    if compile_backend is not None:
        stream.module.model.backbone.compile(backend=compile_backend)
    return stream


def with_batch(stream: Stream, batch: int) -> Stream:
    """The same module (and optimizer) streaming `batch` rows side by side."""
    video = stream.batch["video"]
    rows = stream_batch(stream.frames, int(video.shape[-1]), batch, video.device)
    return dataclasses.replace(stream, batch=rows)


def train_update(stream: Stream, setting: Setting) -> None:
    """One training step: training_step (stream_step + BCE), backward, AdamW step."""
    module, optimizer = stream.module, stream.optimizer
    assert optimizer is not None, "a training stream has an optimizer"
    module.train()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=NO_TRAINER_LOG)
        with setting.autocast():
            loss = module.training_step(stream.batch, 0)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def inference_update(stream: Stream, setting: Setting) -> None:
    """One streamed inference step without gradients."""
    stream.module.eval()
    with torch.no_grad(), setting.autocast():
        stream.module.stream_step(stream.batch, INFERENCE_STAGE)


def measure(
    stream: Stream, device: torch.device, steps: Steps, mode: str, config: Config, compiled: bool
) -> Row:
    """Fill the memory, time the first step, warm up, time `repeats` steps; peak memory."""
    train = mode == "train"
    setting = setting_of(device, steps)
    update = train_update if train else inference_update
    fill_memory(stream, TRAIN_STAGE if train else INFERENCE_STAGE)
    reset_peak_memory(device)
    synchronize(device)
    began = time.perf_counter()
    update(stream, setting)
    synchronize(device)
    first = time.perf_counter() - began
    for _ in range(max(steps.warmup - 1, 0)):
        update(stream, setting)
    step = seconds_per_call(lambda: update(stream, setting), steps.repeats, device)
    peak = peak_memory_mib(device)
    return {
        "device": device_label(device),
        "mode": mode,
        "attention": config.attention,
        "memory": config.memory,
        "l": config.length,
        "batch": steps.batch,
        "dtype": steps.dtype or "float32",
        "compiled": compiled,
        "first_step_s": round(first, 3),
        "compile_s": round(max(first - step, 0.0), 3) if compiled else "",
        "ms_per_step": MS * step,
        "clips_per_s": steps.batch / step,
        "peak_mib": "" if peak is None else round(peak, 1),
        "repeats": steps.repeats,
    }


def train_rows(
    overrides: Sequence[str], config: Config, device: torch.device, steps: Steps, seed: int
) -> list[Row]:
    """Training throughput and peak memory of one configuration (not compiled)."""
    stream = build(overrides, config, device, steps, seed)
    return [measure(stream, device, steps, "train", config, compiled=False)]


def inference_rows(
    overrides: Sequence[str],
    config: Config,
    device: torch.device,
    steps: Steps,
    batches: Sequence[int],
    seed: int,
) -> list[Row]:
    """Streaming inference throughput and peak memory at every batch size (not compiled)."""
    stream = build(overrides, config, device, dataclasses.replace(steps, batch=batches[0]), seed)
    rows = []
    for batch in batches:
        at = dataclasses.replace(steps, batch=batch)
        rows.append(measure(with_batch(stream, batch), device, at, "inference", config, False))
    return rows


def compiled_rows(
    overrides: Sequence[str],
    config: Config,
    device: torch.device,
    steps: Steps,
    mode: str,
    backend: str,
    seed: int,
) -> list[Row]:
    """Training or inference (`mode`) of the configuration with its backbone compiled.

    Compiled code is dropped first (`torch._dynamo.reset`) so that each measurement compiles
    from scratch and never hits the recompilation limit of an earlier one.
    """
    torch._dynamo.reset()
    stream = build(overrides, config, device, steps, seed, compile_backend=backend)
    return [measure(stream, device, steps, mode, config, compiled=True)]


def brief(rows: Sequence[Row]) -> str:
    """A progress line: clips/s, peak memory and compile time of each row."""
    parts = []
    for row in rows:
        text = f"{row['mode']} b{row['batch']} {row['clips_per_s']:.1f} clips/s"
        if row["peak_mib"] != "":
            text += f", peak {row['peak_mib'] / 1024:.2f} GiB"
        if row["compile_s"] != "":
            text += f", compile {row['compile_s']:.0f} s"
        parts.append(text)
    return "; ".join(parts)

"""The training DataModule feeding the device: clips/s and device busy fraction per worker count.

The DataModule and the detector are built as training builds them (`instantiate(cfg.data)`,
`prepare_data`, `setup`, `train_dataloader`; `instantiate(cfg.model, **task_kwargs)`), and each
loader batch is moved to the device and trained on (`training_step`, backward, AdamW step).
Per worker count, the first batch and the ones the workers prefetched meanwhile are trained on
untimed; then batches are timed for at most `batches` batches or `seconds` seconds. Busy
fraction = device time of the steps (CUDA events) / wall time of the loop: below 1, the device
waited for data. The synthetic world can be written by a process forked before the device is
touched, so that the video encoding overlaps the other parts.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator, Mapping, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

import torch
from pytorch_lightning.utilities import move_data_to_device
from torch.utils.data import DataLoader

from tinymem.bench.gpu.clock import StepTimer, device_label, synchronize
from tinymem.bench.gpu.throughput import Steps, setting_of, train_update
from tinymem.bench.latency import Stream
from tinymem.bench.models import compose_train
from tinymem.bench.report import Row
from tinymem.pipeline import task_kwargs
from tinymem.targets import instantiate


def _prepare(data: Mapping[str, Any]) -> None:
    instantiate(data).prepare_data()


def start_preparing(overrides: Sequence[str]) -> BaseProcess:
    """Write the data set of `overrides` in a forked process (call before CUDA is initialised)."""
    data = compose_train(overrides).data
    process = multiprocessing.get_context("fork").Process(
        target=_prepare, args=(data,), name="tinymem-bench-data", daemon=True
    )
    process.start()
    return process


def _endless(loader: DataLoader) -> Iterator[dict]:
    while True:
        yield from loader


def feed_stream(overrides: Sequence[str], device: torch.device, seed: int) -> Stream:
    """The detector and AdamW of the train config with `overrides`, for the data's classes."""
    cfg = compose_train(overrides)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    torch.manual_seed(seed)
    module = instantiate(cfg.model, **task_kwargs(datamodule)).to(device)
    optimizer = instantiate(cfg.model.optimizer)(
        params=[p for p in module.parameters() if p.requires_grad]
    )
    return Stream("", 0, module, {}, int(cfg.data.num_frames), optimizer)


def feed_row(
    overrides: Sequence[str],
    stream: Stream,
    workers: int,
    device: torch.device,
    dtype: str | None,
    batches: int,
    seconds: float,
) -> Row:
    """Train `stream` on the DataModule's batches with `workers` loader workers, timed."""
    cfg = compose_train([*overrides, f"data.num_workers={workers}"])
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    setting = setting_of(device, Steps(int(cfg.data.batch_size), dtype, 0, 0))
    stream.module.on_train_epoch_start()  # empty memory: new streams
    batches_in = _endless(loader)

    def train_on_next() -> int:
        batch = next(batches_in)
        clips = int(batch["valid"].sum())
        batch = move_data_to_device(batch, device)
        timer.start()
        stream.batch = datamodule.on_after_batch_transfer(batch, 0)  # uint8 clips finished here
        train_update(stream, setting)
        timer.stop()
        return clips

    timer = StepTimer(device)  # untimed: worker start-up, first decode and the prefetched batches
    for _ in range(1 + workers * (loader.prefetch_factor or 0)):
        train_on_next()
    synchronize(device)
    timer = StepTimer(device)
    began = time.perf_counter()
    clips = steps = 0
    while steps < batches and time.perf_counter() - began < seconds:
        clips += train_on_next()
        steps += 1
    busy = timer.seconds()  # synchronizes: the last step is done
    wall = time.perf_counter() - began
    batches_in.close()  # drops the loader's iterator: its workers stop
    return {
        "device": device_label(device),
        "workers": workers,
        "batch": setting.batch,
        "clip": "x".join(str(n) for n in stream.batch["video"].shape[1:]),
        "batches": steps,
        "clips": clips,
        "wall_s": round(wall, 3),
        "clips_per_s": clips / wall,
        "busy_fraction": busy / wall,
        "device_clips_per_s": clips / busy if busy > 0 else "",
    }


def cores_needed(rows: Sequence[Row], busy_target: float) -> str:
    """The fewest measured workers that kept the device busy `busy_target` of the time."""
    enough = sorted(r["workers"] for r in rows if r["busy_fraction"] >= busy_target)
    measured = sorted(r["workers"] for r in rows)
    if not measured:
        return "no worker count was measured"
    if not enough:
        return (
            f"no measured worker count ({measured}) kept the device busy {busy_target:.0%} of "
            "the time: more workers (CPU cores) per GPU are needed"
        )
    return (
        f"{enough[0]} loader worker(s) (CPU cores, plus one for the training process) kept the "
        f"device busy at least {busy_target:.0%} of the time (measured: {measured})"
    )


def brief(rows: Sequence[Row]) -> str:
    """A progress line: clips/s and busy fraction."""
    return "; ".join(
        f"{r['workers']} workers: {r['clips_per_s']:.1f} clips/s, busy {r['busy_fraction']:.0%}"
        for r in rows
    )

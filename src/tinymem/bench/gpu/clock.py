"""Device time and peak memory: CUDA events and the allocator's peak on a GPU, wall time on the CPU.

CUDA work is asynchronous: events recorded on the stream time what the device did between them,
without stalling the host between steps (as training runs). On the CPU, work is synchronous and
the wall clock is the device clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

MIB = 2**20


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer:
    """Sums the device time of marked intervals; reads it (synchronizing once) at the end."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._cuda: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._wall = 0.0
        self._began = 0.0
        self._open: torch.cuda.Event | None = None

    def start(self) -> None:
        """Mark the start of an interval."""
        if self.device.type == "cuda":
            self._open = torch.cuda.Event(enable_timing=True)
            self._open.record()
        else:
            self._began = time.perf_counter()

    def stop(self) -> None:
        """Mark the end of the interval started last."""
        if self.device.type == "cuda":
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            assert self._open is not None, "stop() without start()"
            self._cuda.append((self._open, end))
            self._open = None
        else:
            self._wall += time.perf_counter() - self._began

    def seconds(self) -> float:
        """Total device seconds of the intervals marked so far."""
        if self.device.type != "cuda":
            return self._wall
        synchronize(self.device)
        return sum(begin.elapsed_time(end) for begin, end in self._cuda) / 1000.0


def seconds_per_call(step: Callable[[], object], calls: int, device: torch.device) -> float:
    """Mean device seconds per call over `calls` calls of `step` run back to back."""
    synchronize(device)
    timer = StepTimer(device)
    timer.start()
    for _ in range(calls):
        step()
    timer.stop()
    return timer.seconds() / calls


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak of allocated device memory (CUDA only)."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: torch.device) -> float | None:
    """Peak allocated device memory since the last reset, in MiB (None on the CPU)."""
    if device.type != "cuda":
        return None
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) / MIB


def free_device_memory(device: torch.device) -> None:
    """Return cached blocks to the device (after a configuration is dropped or failed)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def device_label(device: torch.device) -> str:
    """`cpu`, or `cuda: <GPU name>`: the device column of every table."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return "cpu"

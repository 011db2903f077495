"""Latency: bf16 autocast settings, full memory around a streamed step, settings per device."""

from __future__ import annotations

import pytest
import torch

from helpers.model import BENCH_TINY
from tinymem.bench.latency import (
    NO_MEMORY,
    Setting,
    build_stream,
    fill_memory,
    latency_settings,
    measure_setting,
)
from tinymem.config import compose_config


def test_latency_in_bf16_autocast_batch_2_the_gpu_settings_code() -> None:
    setting = Setting(torch.device("cpu"), 2, "bfloat16", False, 0, 1, 1)
    rows, tower_ms = measure_setting(
        BENCH_TINY, [NO_MEMORY, "text+region"], [2], [2], setting, seed=0
    )
    assert [(r["mode"], r["memory"], r["l"]) for r in rows] == [
        ("inference", "none", 0),
        ("inference", "text+region", 2),
        ("training", "none", 0),
        ("training", "text+region", 2),
    ]
    assert all(r["ms_per_clip"] > 0 and r["clips_per_s"] > 0 and r["batch"] == 2 for r in rows)
    assert all(r["ratio_to_none"] == 1.0 for r in rows if r["memory"] == NO_MEMORY)
    assert all(r["ratio_to_none"] > 0 for r in rows)
    assert tower_ms is not None and tower_ms > 0
    assert setting.name == "cpu bfloat16 batch 2"


def test_memory_is_full_before_and_after_a_streamed_step() -> None:
    setting = Setting(torch.device("cpu"), 2, None, False, 0, 1, 1)
    stream = build_stream(BENCH_TINY, "vision", 3, setting, seed=0)
    fill_memory(stream, "predict")
    memory = stream.module.memories["predict"]
    with torch.no_grad():
        reads = memory.read()
        assert all(bool(read.mask.all()) for read in reads.values())  # l valid entries each
        stream.module.stream_step(stream.batch, "predict")
    assert all(len(cache) == cache.capacity == 3 for cache in memory.caches.values())
    assert all(bool(read.mask.all()) for read in memory.read().values())


def test_latency_settings_follow_the_device_and_note_a_missing_gpu(monkeypatch) -> None:
    cfg = compose_config("bench").latency
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    settings, notes = latency_settings(cfg, "auto")
    assert [s.name for s in settings] == ["cpu fp32 batch 1"]
    assert notes and notes[0].startswith("No CUDA device: the GPU rows (bfloat16 autocast, batch 8")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        latency_settings(cfg, "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    settings, notes = latency_settings(cfg, "cuda")
    assert [s.name for s in settings] == [
        "cuda bfloat16 batch 8",
        "cuda bfloat16 batch 8, compiled",
    ]
    assert notes == []

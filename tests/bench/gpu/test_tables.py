"""GPU run-book tables: text+region against vision at each l and against none."""

from __future__ import annotations

import pytest

from tinymem.bench.gpu.tables import ratio_rows


def test_ratios_compare_text_region_with_vision_at_each_l_and_with_none() -> None:
    def row(memory: str, length: int, clips: float, peak: float, batch: int = 8) -> dict:
        return {
            "device": "cuda: H200",
            "mode": "train",
            "batch": batch,
            "attention": "sdpa",
            "compiled": False,
            "memory": memory,
            "l": length,
            "clips_per_s": clips,
            "ms_per_step": 1000 * batch / clips,
            "peak_mib": peak,
        }

    rows = [
        row("text+region", 12, 40.0, 1100.0),
        row("vision", 12, 20.0, 2000.0),
        row("none", 0, 50.0, 1000.0),
        row("text+region", 6, 45.0, 1050.0),  # no vision at l=6: no ratio
        row("vision", 2, 10.0, 500.0, batch=1),  # another setting, no text+region
    ]
    (ratio,) = ratio_rows(rows)
    assert (ratio["l"], ratio["batch"]) == (12, 8)
    assert ratio["clips_per_s_ratio"] == 2.0 and ratio["peak_memory_ratio"] == 0.55
    assert ratio["text+region_time_over_none_pct"] == pytest.approx(25.0)
    assert ratio["vision_time_over_none_pct"] == pytest.approx(150.0)
    assert ratio["text+region_memory_over_none_mib"] == 100.0
    assert ratio["vision_memory_over_none_mib"] == 1000.0
    cpu = [{**r, "peak_mib": ""} for r in rows[:3]]  # no peak memory on the CPU
    (ratio,) = ratio_rows(cpu)
    assert ratio["peak_memory_ratio"] == "" and ratio["vision_memory_over_none_mib"] == ""

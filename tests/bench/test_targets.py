"""The bench targets: measured values and whether each is met."""

from __future__ import annotations

from tinymem.bench.report import Report
from tinymem.bench.targets import targets_report


def test_targets_state_the_measured_values_and_whether_each_is_met() -> None:
    def flops(kind: str, length: int, gflops: float) -> dict:
        return {
            "model": "mvit16",
            "path": "eager",
            "memory": kind,
            "l": length,
            "total_gflops": gflops,
        }

    def latency(kind: str, ratio: float) -> dict:
        setting = "cpu fp32 batch 1"
        return {
            "setting": setting,
            "mode": "inference",
            "memory": kind,
            "l": 12,
            "ratio_to_none": ratio,
        }

    reports = {
        "flops": Report(
            "flops",
            [
                flops("text+region", 2, 100),
                flops("text+region", 12, 104.0),
                flops("vision", 2, 100),
                flops("vision", 12, 112.0),
            ],
            [],
        ),
        "latency": Report("latency", [latency("text+region", 1.12), latency("vision", 1.3)], []),
    }
    lines = targets_report(reports).grids[0].rows
    assert lines[0][1:] == ["text+region +4.00%, vision +12.00%", "yes"]
    assert lines[1][1:] == ["text+region x1.120, vision x1.300", "NO"]
    reports["flops"].rows[3]["total_gflops"] = 106.0  # vision grows less than twice as much
    assert targets_report(reports).grids[0].rows[0][2] == "NO"

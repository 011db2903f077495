"""GPU feed: the fewest workers that kept the device busy."""

from __future__ import annotations

from tinymem.bench.gpu.feed import cores_needed


def test_cores_needed_names_the_fewest_workers_that_kept_the_device_busy() -> None:
    rows = [
        {"workers": 8, "busy_fraction": 0.97},
        {"workers": 2, "busy_fraction": 0.4},
        {"workers": 4, "busy_fraction": 0.92},
    ]
    assert cores_needed(rows, 0.9).startswith("4 loader worker(s)")
    assert cores_needed(rows, 0.99).startswith("no measured worker count ([2, 4, 8])")

"""The benchmark command measures what it says (token counts are exact; times are positive)."""

from __future__ import annotations

import torch

from tinymem.bench import measure


def test_bench_counts_memory_keys_after_compression() -> None:
    row = measure("text+region", ["memory.length=3"], steps=1, device=torch.device("cpu"))
    # text: 4 frames -> 2 tokens per entry after stride-2 readout, x3 entries;
    # region: 16 tokens -> 8 per entry, x3 entries
    assert row["tokens"] == {"text": 6, "region": 24}
    assert row["plan"] == "TR" and row["step_ms"] > 0
    assert measure("none", [], steps=1, device=torch.device("cpu"))["tokens"] == {}

"""FLOPs counted on meta tensors: equal to real tensors, memory's added cost."""

from __future__ import annotations

import pytest
import torch

from helpers.model import BENCH_TEXT_WIDTH, BENCH_TINY
from tinymem.bench.flops import count_flops, flops_rows
from tinymem.bench.latency import NO_MEMORY
from tinymem.bench.models import build_detector


@pytest.mark.parametrize(
    ("kind", "path"), [("vision", "eager"), ("text+region", "eager"), ("text+region", "sdpa")]
)
def test_flops_on_meta_tensors_equal_real_tensors(kind: str, path: str) -> None:
    overrides = [*BENCH_TINY, f"model.backbone.attention={path}"]
    torch.manual_seed(0)
    real = count_flops(build_detector(overrides, kind, 2, BENCH_TEXT_WIDTH, device="cpu"))
    meta = count_flops(build_detector(overrides, kind, 2, BENCH_TEXT_WIDTH, device="meta"))
    assert meta == real
    assert 0 < real["readout"] < real["attention"] < real["total"]


def test_flops_without_memory_equal_no_memory_and_grow_with_l() -> None:
    paths = ["eager", "sdpa"]
    rows = flops_rows(
        {"tiny": BENCH_TINY}, ["vision", "text+region"], [1, 2, 3], BENCH_TEXT_WIDTH, paths
    )
    for path in paths:
        none = next(r for r in rows if r["memory"] == NO_MEMORY and r["path"] == path)
        for kind in ("vision", "text+region"):
            mine = sorted(
                (r for r in rows if r["memory"] == kind and r["path"] == path), key=lambda r: r["l"]
            )
            assert [r["l"] for r in mine] == [0, 1, 2, 3]
            assert mine[0]["total_gflops"] == none["total_gflops"]  # l=0: no memory op runs
            assert mine[0]["readout_gflops"] == 0 and mine[0]["total_increase_pct"] == 0
            totals = [r["total_gflops"] for r in mine]
            assert all(a < b for a, b in zip(totals, totals[1:], strict=False)), totals
            for row in mine:  # memory adds FLOPs only in the attention blocks and their readouts
                added_total = row["total_gflops"] - mine[0]["total_gflops"]
                added_attention = row["attention_gflops"] - mine[0]["attention_gflops"]
                assert added_total == pytest.approx(added_attention, rel=1e-9, abs=1e-12)

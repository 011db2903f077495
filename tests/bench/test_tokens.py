"""Memory tokens per block: the plan and MeMViT's compression formulas."""

from __future__ import annotations

import math

from helpers.model import BENCH_TEXT_WIDTH, BENCH_TINY
from tinymem.bench.models import build_detector
from tinymem.bench.tokens import tokens_rows
from tinymem.models.mvit import conv_output_size

FRAMES = 4
N_REGION = 16
VISION_KERNEL, VISION_STRIDE = (7, 3, 3), (4, 2, 2)


def _conv1d(tokens: int) -> int:  # P_k / P_v: kernel 3, stride 2, padding 1
    return conv_output_size(tokens, 3, 2, 1)


def _vision_tokens(kv_grid: tuple[int, int, int]) -> tuple[int, int]:
    """MeMViT entry before/after the (7,3,3)/(4,2,2) compression, class token included."""
    axes = zip(kv_grid, VISION_KERNEL, VISION_STRIDE, strict=True)
    out = [conv_output_size(n, k, s, k // 2) for n, k, s in axes]
    return 1 + math.prod(kv_grid), 1 + math.prod(out)


def test_token_counts_follow_the_plan_and_the_compression_formulas() -> None:
    rows = tokens_rows(
        {"tiny": BENCH_TINY}, ["vision", "text", "region", "text+region"], [1, 3], BENCH_TEXT_WIDTH
    )
    by = {(r["memory"], r["l"]): r for r in rows}
    net = build_detector(BENCH_TINY, "vision", 1, BENCH_TEXT_WIDTH).model.backbone
    vision = {b: _vision_tokens(net.kv_grid(b)) for b in (0, 2)}
    for length in (1, 3):
        expected = {
            "vision": {b: (length * n, length * m) for b, (n, m) in vision.items()},
            "text": {b: (length * FRAMES, length * _conv1d(FRAMES)) for b in (0, 2)},
            "region": {b: (length * N_REGION, length * _conv1d(N_REGION)) for b in (0, 2)},
            "text+region": {
                0: (length * FRAMES, length * _conv1d(FRAMES)),
                2: (length * N_REGION, length * _conv1d(N_REGION)),
            },
        }
        for kind, blocks in expected.items():
            row = by[(kind, length)]
            per_block = " ".join(f"{b}:{n}/{m}" for b, (n, m) in blocks.items())
            assert row["per_block"] == per_block, (kind, length)
            assert row["before"] == sum(n for n, _ in blocks.values()) / len(blocks)
            assert row["after"] == sum(m for _, m in blocks.values()) / len(blocks)
        ours = by[("text+region", length)]
        assert ours["plan"] == "TR" and ours["blocks"] == "0 2"
        assert ours["vision_over_this"] == by[("vision", length)]["after"] / ours["after"]

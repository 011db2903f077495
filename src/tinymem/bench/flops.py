"""Report 2 (paper figure 5a): forward FLOPs per clip, total and in the attention blocks.

Counted with `torch.utils.flop_counter.FlopCounterMode` on the real model code, on the meta
device (no memory, no arithmetic: the counts are those of real tensors, which the tests check on
a small model). FlopCounterMode counts matrix products, convolutions and fused attention kernels
at 2 FLOPs per multiply-add; element-wise ops (softmax, norms, GELU, additions) and RoIAlign are
not counted. Both attention paths are counted: `eager` (torchvision's op order: q.k, the
decomposed relative positions, softmax, attn.v: the architecture's cost, comparable to fvcore
counts) and `sdpa` (the fused path the mvit16/mvit24 configs run), which folds the relative
positions into wider queries/keys: per-axis terms plus one column per memory entry (the memory
position term depends only on how many clips back an entry is), so its q.k costs
`N_q * (N_k + M) * (d + rel + l)` for M memory tokens in l entries: linear in the memory length.

Every count runs with SDPA forced to its math backend (`sdpa_kernel(SDPBackend.MATH)`): the
fused kernel a build dispatches to depends on the torch version and the device (the meta device
and a CPU may pick different ones, and only some are known to FlopCounterMode), while the math
backend is the same two matrix products everywhere. The counts are therefore those of the
architecture, identical on every torch build and on meta and real tensors.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

import open_clip
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from tinymem.bench.models import Detector, build_detector, clip_inputs, full_reads
from tinymem.bench.plots import plot_flops
from tinymem.bench.report import Grid, Report, Row, fmt, pivot

GIGA = 1e9
NO_MEMORY = "none"
# Module names (FlopCounterMode's dotted paths) of the attention part: each block's attention
# and its memory readout (called by the backbone just before the block, so counted apart).
ATTENTION_MODULE = re.compile(r"(^|\.)blocks\.\d+\.attn$")
READOUT_MODULE = re.compile(r"(^|\.)blocks\.\d+\.attn\.memory_readout$")
CAPTION = "a person is holding a red cup in a kitchen"  # any caption costs the same (padded)


def count_flops(detector: Detector, with_memory: bool = True) -> dict[str, int]:
    """FLOPs of one forward of one clip: `total`, `attention` (blocks' attn + readouts), `readout`.

    With `with_memory` every cache of the plan is read full (l valid entries); without, the
    model runs without memory (as for the first clip of a video: no memory op runs).
    """
    video, boxes, box_mask = clip_inputs(detector, batch=1)
    reads = full_reads(detector, batch=1) if with_memory and detector.spec.layers else None
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        detector.model(video, boxes, box_mask, reads)
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    attention = sum(n for name, n in per_module.items() if ATTENTION_MODULE.search(name))
    readout = sum(n for name, n in per_module.items() if READOUT_MODULE.search(name))
    return {
        "total": counter.get_total_flops(),
        "attention": attention + readout,
        "readout": readout,
    }


def text_tower_gflops(model_name: str) -> float:
    """GFLOPs of the open_clip text tower `model_name` for one caption (meta device)."""
    quiet = logging.root.level
    logging.root.setLevel(logging.ERROR)  # open_clip logs every step of building a random model
    try:
        clip = open_clip.create_model(model_name, device="meta")
    finally:
        logging.root.setLevel(quiet)
    tokens = open_clip.get_tokenizer(model_name)([CAPTION]).to("meta")  # [1, context]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        clip.encode_text(tokens)
    return counter.get_total_flops() / GIGA


def flops_rows(
    models: Mapping[str, Sequence[str]],
    memories: Sequence[str],
    lengths: Sequence[int],
    text_width: int,
    paths: Sequence[str],
) -> list[Row]:
    """One row per (model, attention path, memory, l); l = 0: the memory model without memory."""
    rows = []
    for model_name, overrides in models.items():
        for path in paths:
            model_overrides = [*overrides, f"model.backbone.attention={path}"]
            line = {"model": model_name, "path": path}
            base = count_flops(build_detector(model_overrides, NO_MEMORY, 1, text_width))
            rows.append({**line, "memory": NO_MEMORY, "l": 0, "plan": "", **base})
            for kind in [m for m in memories if m != NO_MEMORY]:
                for length in sorted({0, *lengths}):
                    detector = build_detector(model_overrides, kind, max(length, 1), text_width)
                    counts = count_flops(detector, with_memory=length > 0)
                    plan = detector.spec.plan
                    rows.append({**line, "memory": kind, "l": length, "plan": plan, **counts})
    none = {(r["model"], r["path"]): dict(r) for r in rows if r["memory"] == NO_MEMORY}
    for row in rows:
        reference = none[(row["model"], row["path"])]
        for part in ("total", "attention"):  # from the integer counts: 0 exactly when equal
            added = row[part] - reference[part]
            row[f"{part}_increase_pct"] = 100 * added / reference[part]
        for part in ("total", "attention", "readout"):
            row[f"{part}_gflops"] = row.pop(part) / GIGA
    return rows


def flops_report(rows: list[Row], text_tower: str | None) -> Report:
    """GFLOPs per clip (total and attention) for every model, attention path, memory and l
    (`flops_rows`), and the text tower's per caption (`text_tower`)."""
    grids = []
    for part, title in (
        ("total", "Forward GFLOPs per clip, total (increase over no memory)"),
        ("attention", "Forward GFLOPs per clip in the attention blocks (increase over no memory)"),
    ):
        values, lines = pivot(
            rows,
            key=lambda r: (r["model"], r["path"], r["memory"], r["plan"]),
            column="l",
            cell=lambda r, p=part: (
                f"{fmt(r[p + '_gflops'], 2)}"
                + ("" if r["memory"] == NO_MEMORY else f" ({r[p + '_increase_pct']:+.1f}%)")
            ),
        )
        grid = Grid(title, ["model", "attention", "memory", "plan", *(f"l={v}" for v in values)])
        for (model, path, kind, plan), cells in lines.items():
            grid.add(model, path, kind, plan, *(cells.get(v, "") for v in values))
        grids.append(grid)
    notes = [
        "One clip (batch 1, one person box), memory full: every cache of the plan read with l "
        "valid entries; l=0 runs the same model without memory (equals the no-memory model). "
        "total = the whole TinyMemDetector forward (backbone and RoI head); attention = every "
        "block's `blocks[i].attn` (q/k/v projection, pooling, q.k, relative positions, softmax, "
        "attn.v, output projection) plus its memory readout (P_k/P_v or the vision "
        "compression, `blocks[i].attn.memory_readout`).",
        "FlopCounterMode on meta tensors: matrix products, convolutions and fused attention "
        "at 2 FLOPs per multiply-add (fvcore, and torchvision's 64.2 GFLOPS for mvit_v2_s, "
        "count multiply-adds: half these numbers). attention = eager: torchvision's op order "
        "(the architecture's cost); sdpa: the fused path mvit16/mvit24 run by default, which "
        "folds the relative positions into wider q/k (per-axis terms plus one column per "
        "memory entry, so its memory cost grows linearly with l).",
        "Not counted per clip: the frozen text tower, which encodes each unique caption once "
        "(embeddings are cached per caption, and captions repeat).",
    ]
    if text_tower:
        gflops = text_tower_gflops(text_tower)
        notes.append(
            f"Text tower {text_tower} (open_clip, full context): {gflops:.2f} GFLOPs per unique "
            "caption (a clip of T frames whose T captions are all new pays T times this once)."
        )
    return Report("flops", rows, grids, notes, plot_flops(rows))

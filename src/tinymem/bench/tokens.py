"""Report 1 (paper table 2 / figure 5b): memory tokens per augmented attention block."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from tinymem.bench.models import build_detector
from tinymem.bench.plots import plot_tokens
from tinymem.bench.report import Grid, Report, Row, fmt, pivot

VISION = "vision"
TINYMEM = "text+region"

DEFINITION = (
    "Memory tokens per augmented block = keys (and as many values) that one block's attention "
    "reads from memory with a full cache of l entries, before and after the readout's "
    "compression, averaged (arithmetic mean) over the blocks of the memory plan. vision "
    "(MeMViT): the block's own pooled keys/values, 1 class token + T_kv*H_kv*W_kv grid tokens "
    "per entry, compressed by the depthwise Conv3d (7,3,3)/(4,2,2) (class token kept); text: "
    "one CLIP token per frame caption (T per entry); region: n_region = 16 RoI tokens per "
    "entry; text/region are compressed by the Conv1d P_k/P_v (kernel 3, stride 2, padding 1)."
)


def tokens_rows(
    models: Mapping[str, Sequence[str]],
    memories: Sequence[str],
    lengths: Sequence[int],
    text_width: int,
) -> list[Row]:
    """One row per (model, memory, l): plan, blocks and mean tokens before/after compression."""
    rows = []
    for model_name, overrides in models.items():
        for kind in memories:
            for length in lengths:
                detector = build_detector(overrides, kind, length, text_width)
                counts = detector.model.memory_tokens(detector.entry_tokens)  # block -> (b, a)
                spec = detector.spec
                rows.append(
                    {
                        "model": model_name,
                        "memory": kind,
                        "l": length,
                        "plan": spec.plan,
                        "blocks": " ".join(str(b) for b in spec.layers),
                        "frames": detector.frames,
                        "before": statistics.fmean(b for b, _ in counts.values()),
                        "after": statistics.fmean(a for _, a in counts.values()),
                        "per_block": " ".join(f"{b}:{n}/{m}" for b, (n, m) in counts.items()),
                    }
                )
    after = {(r["model"], r["memory"], r["l"]): r["after"] for r in rows}
    for row in rows:  # how many times more tokens vision memory reads, same model and l
        vision = after.get((row["model"], VISION, row["l"]))
        row["vision_over_this"] = "" if vision is None else vision / row["after"]
    return rows


def tokens_report(rows: list[Row]) -> Report:
    """Memory tokens per augmented block for every model, memory kind and l (`tokens_rows`)."""
    values, lines = pivot(
        rows,
        key=lambda r: (r["model"], r["memory"], r["plan"]),
        column="l",
        cell=lambda r: f"{fmt(r['after'])} ({fmt(r['before'])})",
    )
    grid = Grid(
        "Memory tokens per augmented block, after (before) compression, mean over the plan",
        ["model", "memory", "plan", *(f"l={v}" for v in values)],
    )
    for (model, kind, plan), cells in lines.items():
        grid.add(model, kind, plan, *(cells.get(v, "") for v in values))
    ratio_values, ratios = pivot(
        [r for r in rows if r["memory"] == TINYMEM and r["vision_over_this"] != ""],
        key=lambda r: (r["model"],),
        column="l",
        cell=lambda r: f"{r['vision_over_this']:.2f}",
    )
    for (model,), cells in ratios.items():
        grid.add(model, f"{VISION} / {TINYMEM}", "", *(cells.get(v, "") for v in ratio_values))
    frames = {r["model"]: r["frames"] for r in rows}
    notes = [
        DEFINITION,
        "Clips: " + ", ".join(f"{m} T={t} frames" for m, t in frames.items()) + ".",
    ]
    return Report("tokens", rows, [grid], notes, plot_tokens(rows))

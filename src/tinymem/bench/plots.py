"""Figures of the bench reports, drawn from their CSV rows (fresh or read back with `read_rows`).

Figures are `matplotlib.figure.Figure` objects built without pyplot (no global state, no
display needed); `fig.savefig(path)` writes them.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from tinymem.bench.report import Row

PANEL_SIZE = (4.6, 3.4)  # inches per subplot
MARKERS = {"none": "x", "vision": "s", "text": "^", "region": "v", "text+region": "o"}
COLOURS = {"none": "grey", "vision": "C0", "text": "C1", "region": "C2", "text+region": "C3"}
PATH_STYLES = {"eager": "-", "sdpa": "--"}  # FLOPs of the two attention paths
LATENCY_LIMIT = 1.10  # the README's streaming-latency target: within 10% of no memory


def _models(rows: Sequence[Row]) -> list[str]:
    return list(dict.fromkeys(r["model"] for r in rows))


def _figure(rows_count: int, cols: int) -> tuple[Figure, list]:
    fig = Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows_count), layout="constrained")
    axes = fig.subplots(rows_count, cols, squeeze=False)
    return fig, [ax for line in axes for ax in line]


def _lines(
    ax, rows: Sequence[Row], y: str, kinds: Sequence[str], style: str = "-", suffix: str = ""
) -> None:
    for kind in kinds:
        points = sorted((r["l"], r[y]) for r in rows if r["memory"] == kind)
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(
                xs,
                ys,
                style,
                marker=MARKERS.get(kind, "."),
                color=COLOURS.get(kind),
                label=kind + suffix,
            )
    ax.set_xticks(sorted({r["l"] for r in rows if r["memory"] in kinds}))
    ax.set_xlabel("memory length l")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def plot_tokens(rows: Sequence[Row]) -> Figure:
    """Memory tokens per augmented block (after compression) against l, one panel per model."""
    models = _models(rows)
    fig, axes = _figure(1, len(models))
    for ax, model in zip(axes, models, strict=True):
        mine = [r for r in rows if r["model"] == model]
        _lines(ax, mine, "after", list(dict.fromkeys(r["memory"] for r in mine)))
        ax.set_title(f"{model}: memory tokens per block")
        ax.set_ylabel("tokens (after compression)")
    return fig


def plot_flops(rows: Sequence[Row]) -> Figure:
    """Increase of attention and total GFLOPs over no memory against l, one column per model.

    Solid lines: the eager attention path; dashed: the fused sdpa path.
    """
    models = _models(rows)
    paths = list(dict.fromkeys(r["path"] for r in rows))
    fig, axes = _figure(2, len(models))
    for col, model in enumerate(models):
        for row_index, part in enumerate(("attention", "total")):
            ax = axes[row_index * len(models) + col]
            for path in paths:
                mine = [
                    r
                    for r in rows
                    if r["model"] == model and r["path"] == path and r["memory"] != "none"
                ]
                kinds = list(dict.fromkeys(r["memory"] for r in mine))
                suffix = f" ({path})" if len(paths) > 1 else ""
                _lines(ax, mine, f"{part}_increase_pct", kinds, PATH_STYLES.get(path, "-"), suffix)
            ax.set_title(f"{model}: {part} GFLOPs per clip")
            ax.set_ylabel("increase over no memory (%)")
    return fig


def plot_latency(rows: Sequence[Row]) -> Figure:
    """Per-clip time relative to no memory against l, one panel per setting and mode."""
    panels = list(dict.fromkeys((r["setting"], r["mode"]) for r in rows))
    fig, axes = _figure(1, len(panels))
    for ax, (setting, mode) in zip(axes, panels, strict=True):
        mine = [r for r in rows if r["setting"] == setting and r["mode"] == mode]
        kinds = [k for k in dict.fromkeys(r["memory"] for r in mine) if k != "none"]
        _lines(ax, mine, "ratio_to_none", kinds)
        ax.axhline(1.0, color="grey", linewidth=1)
        ax.axhline(LATENCY_LIMIT, color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"{setting}, {mode}")
        ax.set_ylabel("time per clip / no memory")
    return fig


def plot_data(rows: Sequence[Row]) -> Figure:
    """Clips per second the DataModule delivers against the number of workers, per data set."""
    fig, axes = _figure(1, 1)
    ax = axes[0]
    for name in dict.fromkeys(r["data"] for r in rows):
        points = sorted((r["workers"], r["clips_per_s"]) for r in rows if r["data"] == name)
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xticks(sorted({r["workers"] for r in rows}))
    ax.set_yscale("log")
    ax.set_xlabel("DataLoader workers")
    ax.set_ylabel("clips / s (log scale)")
    ax.set_title("DataModule throughput (decode + transforms)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def plot_backbone(rows: Sequence[Row]) -> Figure:
    """Seconds per clip of tinymem's and torchvision's MViT, per pass."""
    fig, axes = _figure(1, 1)
    ax = axes[0]
    passes = [r["pass"] for r in rows]
    width = 0.4
    for offset, name in ((-width / 2, "tinymem_s"), (width / 2, "torchvision_s")):
        ax.bar([i + offset for i in range(len(rows))], [r[name] for r in rows], width, label=name)
    ax.set_xticks(range(len(rows)), passes)
    ax.set_ylabel("seconds per clip")
    ax.set_title("MViT backbone: tinymem vs torchvision")
    ax.legend(fontsize="small")
    return fig


def figure5(flops: Sequence[Row], tokens: Sequence[Row], model: str) -> Figure:
    """Paper figure 5 (a, b) for one model: attention GFLOPs increase and memory tokens vs l."""
    fig, (left, right) = _figure(1, 2)
    paths = list(dict.fromkeys(r["path"] for r in flops))
    path = "eager" if "eager" in paths else paths[0]  # the architecture's cost, as in the paper
    mine = [
        r
        for r in flops
        if r["model"] == model and r["path"] == path and r["memory"] != "none" and r["l"] > 0
    ]
    _lines(left, mine, "attention_increase_pct", list(dict.fromkeys(r["memory"] for r in mine)))
    left.set_title(f"(a) {model}: attention GFLOPs ({path})")
    left.set_ylabel("increase over no memory (%)")
    mine = [r for r in tokens if r["model"] == model]
    _lines(right, mine, "after", list(dict.fromkeys(r["memory"] for r in mine)))
    right.set_title(f"(b) {model}: memory tokens per block")
    right.set_ylabel("tokens (after compression)")
    return fig

"""The efficiency targets of issue 7, checked against a run's rows (met or not, with the values)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tinymem.bench.report import Grid, Report, Row

FLOPS_MODEL = "mvit16"  # the FLOPs target is stated for TinyMem-16
FLOPS_FROM, FLOPS_TO = 2, 12  # ... from l=2 to l=12
FLOPS_MAX_GROWTH_PCT = 5.0  # text+region total FLOPs grow by less than this ...
VISION_GROWTH_FACTOR = 2.0  # ... and vision's by "much more": at least this many times as much
TOKEN_MIN_RATIO = 5.0  # vision / text+region memory tokens, at every l, both sizes
LATENCY_LENGTH = 12  # text+region streaming latency at this l ...
LATENCY_MAX_RATIO = 1.10  # ... within 10% of no memory on the CPU
NOT_MEASURED = "not measured"


def _find(rows: Sequence[Row], **match: object) -> Row | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def _flops_target(rows: Sequence[Row], path: str) -> list[str]:
    growth = {}
    for kind in ("text+region", "vision"):
        low = _find(rows, model=FLOPS_MODEL, path=path, memory=kind, l=FLOPS_FROM)
        high = _find(rows, model=FLOPS_MODEL, path=path, memory=kind, l=FLOPS_TO)
        if low and high:
            growth[kind] = 100 * (high["total_gflops"] / low["total_gflops"] - 1)
    target = (
        f"{FLOPS_MODEL} total GFLOPs ({path} attention), l={FLOPS_FROM} -> {FLOPS_TO}: "
        f"text+region grows < {FLOPS_MAX_GROWTH_PCT:g}%, "
        f"vision much more (>= {VISION_GROWTH_FACTOR:g}x as much)"
    )
    if "text+region" not in growth:
        return [target, NOT_MEASURED, NOT_MEASURED]
    measured = f"text+region {growth['text+region']:+.2f}%"
    if "vision" in growth:
        measured += f", vision {growth['vision']:+.2f}%"
    vision_grows_more = growth.get("vision", 0) >= VISION_GROWTH_FACTOR * growth["text+region"]
    met = growth["text+region"] < FLOPS_MAX_GROWTH_PCT and vision_grows_more
    return [target, measured, "yes" if met else "NO"]


def _token_targets(rows: Sequence[Row]) -> list[list[str]]:
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows):
        ratios = {
            r["l"]: r["vision_over_this"]
            for r in rows
            if r["model"] == model and r["memory"] == "text+region" and r["vision_over_this"] != ""
        }
        target = (
            f"{model}: vision / text+region memory tokens per augmented block "
            f">= {TOKEN_MIN_RATIO:g}x at every l"
        )
        if not ratios:
            lines.append([target, NOT_MEASURED, NOT_MEASURED])
            continue
        worst = min(ratios, key=ratios.__getitem__)
        measured = f"{min(ratios.values()):.2f}x (l={worst}) to {max(ratios.values()):.2f}x"
        lines.append([target, measured, "yes" if ratios[worst] >= TOKEN_MIN_RATIO else "NO"])
    return lines


def _latency_target(rows: Sequence[Row]) -> list[str]:
    target = (
        f"CPU streaming time per clip, text+region at l={LATENCY_LENGTH}: within "
        f"{100 * (LATENCY_MAX_RATIO - 1):.0f}% of no memory (vision beside it)"
    )
    cpu = [r for r in rows if r["mode"] == "inference" and str(r["setting"]).startswith("cpu")]
    ours = _find(cpu, memory="text+region", l=LATENCY_LENGTH)
    if ours is None:
        return [target, NOT_MEASURED, NOT_MEASURED]
    measured = f"text+region x{ours['ratio_to_none']:.3f}"
    vision = _find(cpu, memory="vision", l=LATENCY_LENGTH)
    if vision is not None:
        measured += f", vision x{vision['ratio_to_none']:.3f}"
    return [target, measured, "yes" if ours["ratio_to_none"] <= LATENCY_MAX_RATIO else "NO"]


def targets_report(reports: Mapping[str, Report]) -> Report:
    """The targets whose reports ran, with measured values and whether each is met."""
    grid = Grid("Targets (issue 7)", ["target", "measured", "met"])
    if "flops" in reports:
        rows = reports["flops"].rows
        for path in dict.fromkeys(r["path"] for r in rows):
            grid.add(*_flops_target(rows, path))
    if "tokens" in reports:
        for line in _token_targets(reports["tokens"].rows):
            grid.add(*line)
    if "latency" in reports:
        grid.add(*_latency_target(reports["latency"].rows))
    rows = [dict(zip(grid.columns, line, strict=True)) for line in grid.rows]
    return Report("targets", rows, [grid])

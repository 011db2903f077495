"""The backbone report: tinymem's MViT against torchvision's, same block table and weights.

One clip (batch 1, float32) through the backbone with torchvision's classifier, forward and
forward+backward, for tinymem's `MViTBackbone` and torchvision's `MViT` built with the same
block table (for `model=mvit16` at 16x224x224 that is `torchvision.models.video.mvit_v2_s`),
alternating the two in each repetition; medians and their ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from tinymem.bench.models import compose_train
from tinymem.bench.plots import plot_backbone
from tinymem.bench.report import Grid, Report
from tinymem.models.mvit import torchvision_twin
from tinymem.models.tinymem import build_backbone

KINETICS_CLASSES = 400
PASSES = ("forward", "forward+backward")


def _seconds(step: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure_backbone(overrides: Sequence[str], repeats: int, device: torch.device) -> dict:
    """Median forward and forward+backward seconds per clip: tinymem vs torchvision MViT."""
    cfg = compose_train(list(overrides))
    backbone_cfg = dict(cfg.model.backbone, num_classes=KINETICS_CLASSES, pretrained=None)
    ours = build_backbone(backbone_cfg)
    theirs = torchvision_twin(ours, float(backbone_cfg.get("drop_path", 0.0)))
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours, theirs = ours.to(device), theirs.to(device)
    clip = torch.randn(1, *ours.input_shape, device=device)
    models: dict[str, Callable[[], torch.Tensor]] = {
        "tinymem": lambda: ours(clip).logits,
        "torchvision": lambda: theirs(clip),
    }
    pair = nn.ModuleList([ours, theirs])
    with torch.no_grad():
        pair.eval()
        max_diff = float((models["tinymem"]() - models["torchvision"]()).abs().max())  # warm-up
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for name, run in models.items():  # alternate, so drift hits both alike
            pair.eval()
            with torch.no_grad():
                times.setdefault((PASSES[0], name), []).append(_seconds(run, device))
            pair.train()
            times.setdefault((PASSES[1], name), []).append(
                _seconds(lambda run=run: run().sum().backward(), device)
            )
            pair.zero_grad(set_to_none=True)
    medians = {key: statistics.median(values) for key, values in times.items()}
    return {
        "clip": list(clip.shape),
        "max_abs_logit_diff": max_diff,
        "rows": {
            mode: (medians[(mode, "tinymem")], medians[(mode, "torchvision")]) for mode in PASSES
        },
    }


def backbone_report(overrides: Sequence[str], repeats: int, device: torch.device) -> Report:
    """The backbone speed report (ratio < 1 means tinymem is faster)."""
    result = measure_backbone(overrides, repeats, device)
    grid = Grid(
        f"Backbone on {device.type} ({torch.get_num_threads()} threads): clip {result['clip']}, "
        f"float32, median of {repeats}; max |logit diff| {result['max_abs_logit_diff']:.1e}",
        ["pass", "tinymem s/clip", "torchvision s/clip", "ratio tinymem/torchvision"],
    )
    rows = []
    for mode, (ours, theirs) in result["rows"].items():
        grid.add(mode, f"{ours:.3f}", f"{theirs:.3f}", f"{ours / theirs:.3f}")
        rows.append(
            {
                "pass": mode,
                "clip": "x".join(map(str, result["clip"])),
                "tinymem_s": ours,
                "torchvision_s": theirs,
                "ratio": ours / theirs,
                "max_abs_logit_diff": result["max_abs_logit_diff"],
                "repeats": repeats,
            }
        )
    return Report("backbone", rows, [grid], [], plot_backbone(rows))

"""`python -m tinymem.bench [memory|backbone] [--repeats N] [overrides]`: efficiency tables.

`memory` (the default table) measures, for each memory kind on one model config, the memory keys
each memory block attends to (after the readout's compression) and the wall time of a streamed
inference step with a full cache. Run with `model=mvit16 data=ava` (and a GPU) for paper-scale
numbers; the default is the demo's tiny model on the CPU.

`backbone` times one clip (batch 1, float32) through the MViT backbone with torchvision's
classifier, forward and forward+backward, for tinymem's `MViTBackbone` and torchvision's `MViT`
built with the same block table (for the default `model=mvit16` at 16x224x224 that is
`torchvision.models.video.mvit_v2_s`) and the same weights, alternating the two in each
repetition, and prints the medians and their ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from tinymem.config import compose_config
from tinymem.lit.detection import DetectionModule
from tinymem.memory.plan import KINDS
from tinymem.models.mvit import torchvision_twin
from tinymem.models.tinymem import build_backbone

WARMUP_STEPS = 2
TABLES = ("memory", "backbone")
BACKBONE_REPEATS = 3  # a full-size MViTv2-S pass takes seconds on a small CPU
KINETICS_CLASSES = 400
# The backbone table's default clip: model=mvit16 at 16x224x224 (torchvision's mvit_v2_s).
BACKBONE_DEFAULTS = ("model=mvit16", "model.backbone.num_frames=16", "model.backbone.crop_size=224")


def _batch(batch: int, frames: int, size: int, step: int, device: torch.device) -> dict:
    return {
        "video": torch.randn(batch, 3, frames, size, size, device=device),
        "boxes": torch.tensor([[[0.1, 0.1, 0.6, 0.9]]], device=device).repeat(batch, 1, 1),
        "box_mask": torch.ones(batch, 1, dtype=torch.bool, device=device),
        "video_id": torch.zeros(batch, dtype=torch.long, device=device),
        "is_first": torch.full((batch,), step == 0, device=device),
        "valid": torch.ones(batch, dtype=torch.bool, device=device),
        "captions": [[f"a person does thing {step}"] * frames for _ in range(batch)],
    }


def measure(kind: str, overrides: Sequence[str], steps: int, device: torch.device) -> dict:
    """Memory tokens per memory block and median step time for one memory kind."""
    cfg = compose_config("train", [f"memory={kind}", *overrides])
    module = DetectionModule(
        backbone=cfg.model.backbone, head=cfg.model.head, memory=cfg.memory, class_ids=[1]
    )
    module = module.to(device).eval()
    frames, size, batch = cfg.data.num_frames, cfg.data.crop_size, cfg.data.eval_batch_size
    times = []
    with torch.no_grad():
        module._reset("predict")
        fill = module.spec.cache_size + WARMUP_STEPS
        for step in range(fill + steps):
            data = _batch(batch, frames, size, step, device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            module.stream_step(data, "predict")
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= fill:
                times.append(time.perf_counter() - start)
        reads = module.memories["predict"].read() if module.spec.layers else {}
    tokens = {
        kind_: int(module.model.backbone.blocks[i].attn.memory_readout(reads[kind_]).mask.shape[1])
        for i, kind_ in module.model.layer_types.items()
    }
    return {
        "kind": kind,
        "plan": module.spec.plan or "-",
        "tokens": tokens,
        "step_ms": 1000 * statistics.median(times),
        "batch": batch,
    }


def _seconds(step: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure_backbone(overrides: Sequence[str], repeats: int, device: torch.device) -> dict:
    """Median forward and forward+backward seconds per clip: tinymem vs torchvision MViT."""
    cfg = compose_config("train", [*BACKBONE_DEFAULTS, *overrides])
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
                times.setdefault(("forward", name), []).append(_seconds(run, device))
            pair.train()
            times.setdefault(("forward+backward", name), []).append(
                _seconds(lambda run=run: run().sum().backward(), device)
            )
            pair.zero_grad(set_to_none=True)
    medians = {key: statistics.median(values) for key, values in times.items()}
    return {
        "clip": list(clip.shape),
        "max_abs_logit_diff": max_diff,
        "rows": {
            mode: (medians[(mode, "tinymem")], medians[(mode, "torchvision")])
            for mode in ("forward", "forward+backward")
        },
    }


def backbone_table(overrides: Sequence[str], repeats: int, device: torch.device) -> Table:
    """The backbone speed table (ratio < 1 means tinymem is faster)."""
    result = measure_backbone(overrides, repeats, device)
    table = Table(
        title=(
            f"tinymem.bench backbone on {device.type} ({torch.get_num_threads()} threads): "
            f"clip {result['clip']}, float32, median of {repeats}; "
            f"max |logit diff| {result['max_abs_logit_diff']:.1e}"
        )
    )
    for column in ("pass", "tinymem s/clip", "torchvision s/clip", "ratio tinymem/torchvision"):
        table.add_column(column)
    for mode, (ours, theirs) in result["rows"].items():
        table.add_row(mode, f"{ours:.3f}", f"{theirs:.3f}", f"{ours / theirs:.3f}")
    return table


def _split_args(args: list[str]) -> tuple[str, int, list[str]]:
    table = args.pop(0) if args and args[0] in TABLES else TABLES[0]
    repeats = BACKBONE_REPEATS
    if "--repeats" in args:
        at = args.index("--repeats")
        if at + 1 >= len(args) or not args[at + 1].isdigit() or int(args[at + 1]) < 1:
            raise SystemExit("--repeats: expected a positive integer")
        repeats = int(args[at + 1])
        del args[at : at + 2]
    return table, repeats, args


def main(argv: Sequence[str] | None = None) -> None:
    """Print a table (`memory` or `backbone`); other arguments are Hydra overrides."""
    import sys

    table_name, repeats, overrides = _split_args(list(sys.argv[1:] if argv is None else argv))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if table_name == "backbone":
        Console().print(backbone_table(overrides, repeats, device))
        return
    table = Table(title=f"tinymem.bench on {device.type} ({' '.join(overrides) or 'demo config'})")
    for column in ("memory", "plan", "memory keys per memory block", "step ms (median)"):
        table.add_column(column)
    for kind in KINDS:
        row = measure(kind, overrides, steps=10, device=device)
        keys = ", ".join(f"{k}: {v}" for k, v in row["tokens"].items()) or "0"
        table.add_row(row["kind"], row["plan"], keys, f"{row['step_ms']:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()

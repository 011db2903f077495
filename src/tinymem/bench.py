"""`python -m tinymem.bench`: memory tokens and streaming-step latency per memory kind.

Measures, for each memory kind on one model config, the memory keys each memory block attends
to (after the readout's compression) and the wall time of a streamed inference step with a full
cache. Run with `model=mvit16 data=ava` (and a GPU) for paper-scale numbers; the default is the
demo's tiny model on the CPU.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
from rich.console import Console
from rich.table import Table

from tinymem.config import compose_config
from tinymem.lit.detection import DetectionModule
from tinymem.memory.plan import KINDS

WARMUP_STEPS = 2


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


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table; extra arguments are Hydra overrides (e.g. model=mvit16)."""
    import sys

    overrides = list(sys.argv[1:] if argv is None else argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
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

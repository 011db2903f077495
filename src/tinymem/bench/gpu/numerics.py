"""Numerics on the device: bf16 autocast against float32, and eager attention against sdpa.

One fixed input (seeded clip, boxes, captions) and one fixed memory (every cache filled with the
same seeded tokens before each forward) go through two detectors with the same weights, one per
attention path, in float32 and in bf16 autocast. The difference of two logit tensors is
max |a - b| / max |b| (b: the reference), so one tolerance fits any logit scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tinymem.bench.gpu.clock import device_label
from tinymem.bench.gpu.throughput import Config, Steps, build, setting_of
from tinymem.bench.latency import INFERENCE_STAGE, Stream, fill_memory
from tinymem.bench.report import Row

TINY = 1e-12  # guards the relative difference against an all-zero reference
BF16 = "bfloat16"


def logits(stream: Stream, device: torch.device, dtype: str | None, seed: int) -> torch.Tensor:
    """Float32 logits of one streamed inference step on freshly filled (seeded) memory."""
    torch.manual_seed(seed)
    fill_memory(stream, INFERENCE_STAGE)
    stream.module.eval()
    setting = setting_of(device, Steps(len(stream.batch["video"]), dtype, 0, 0))
    with torch.no_grad(), setting.autocast():
        out = stream.module.stream_step(stream.batch, INFERENCE_STAGE)
    return out.logits.float()


def difference(value: torch.Tensor, reference: torch.Tensor) -> float:
    """max |value - reference| / max |reference|."""
    scale = max(float(reference.abs().max()), TINY)
    return float((value - reference).abs().max()) / scale


def numerics_rows(
    overrides: Sequence[str],
    memory: str,
    length: int,
    batch: int,
    device: torch.device,
    tolerances: dict[str, float],
    seed: int,
) -> list[Row]:
    """The three comparisons for one memory kind: rows with the difference and the verdict.

    `tolerances`: `fp32` for eager vs sdpa in float32, `bf16` for the comparisons in bf16.
    """
    length = length if memory != "none" else 0
    steps = Steps(batch, None, 0, 0)
    eager = build(overrides, Config(memory, length, "eager"), device, steps, seed)
    sdpa = build(overrides, Config(memory, length, "sdpa"), device, steps, seed)
    sdpa.module.load_state_dict(eager.module.state_dict())
    sdpa.batch = eager.batch  # the same input tensors
    out = {
        (path, name): logits(stream, device, precision, seed)
        for path, stream in (("eager", eager), ("sdpa", sdpa))
        for name, precision in (("float32", None), (BF16, BF16))
    }
    comparisons = [
        ("sdpa bfloat16 vs sdpa float32", ("sdpa", BF16), ("sdpa", "float32"), "bf16"),
        ("eager float32 vs sdpa float32", ("eager", "float32"), ("sdpa", "float32"), "fp32"),
        ("eager bfloat16 vs sdpa bfloat16", ("eager", BF16), ("sdpa", BF16), "bf16"),
    ]
    rows = []
    for name, value, reference, tolerance in comparisons:
        measured = difference(out[value], out[reference])
        rows.append(
            {
                "device": device_label(device),
                "memory": memory,
                "l": length,
                "batch": batch,
                "comparison": name,
                "max_abs_logit": float(out[reference].abs().max()),
                "relative_difference": measured,
                "tolerance": tolerances[tolerance],
                "within": measured <= tolerances[tolerance],
            }
        )
    return rows


def brief(rows: Sequence[Row]) -> str:
    """A progress line: each comparison's difference and verdict."""
    return "; ".join(
        f"{r['comparison']} {r['relative_difference']:.1e} ({'ok' if r['within'] else 'OVER'})"
        for r in rows
    )

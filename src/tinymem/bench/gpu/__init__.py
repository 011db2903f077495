"""`python -m tinymem.bench gpu`: the GPU run-book (config `conf/bench_gpu.yaml`).

One command that measures on a CUDA device, within budgets that fit one short GPU window, what
only a GPU can tell: training and streaming-inference throughput and peak memory of no memory,
vision (MeMViT dense memory) and text+region (TinyMem) at several l, eager vs sdpa attention,
with and without `torch.compile`; bf16 vs float32 and eager vs sdpa numerics; and the training
DataModule feeding the device. `dry_run=true` (`--dry-run`) runs it all on the CPU, tiny.
"""

from tinymem.bench.gpu.run import PARTS, run_gpu

__all__ = ["PARTS", "run_gpu"]

"""Entry point of `python -m tinymem.bench [report ...] [overrides]` (also `make bench`).

`python -m tinymem.bench gpu [--dry-run] [overrides]` (also `make bench-gpu`) is the GPU
run-book instead: config `conf/bench_gpu.yaml`, `--dry-run` being `dry_run=true`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from tinymem.bench.gpu import run_gpu
from tinymem.bench.run import REPORTS, run_bench
from tinymem.config import HYDRA_MAIN_KWARGS

GPU = "gpu"  # first argument that selects the GPU run-book
DRY_RUN = "--dry-run"


def shorthand(args: Sequence[str]) -> list[str]:
    """Bare report names become one override: `backbone` -> `reports=[backbone]`."""
    names = [a for a in args if a in REPORTS]
    rest = [a for a in args if a not in REPORTS]
    return [f"reports=[{','.join(names)}]", *rest] if names else rest


def gpu_arguments(args: Sequence[str]) -> list[str]:
    """The GPU run-book's Hydra overrides: `--dry-run` -> `dry_run=true`."""
    return ["dry_run=true" if a == DRY_RUN else a for a in args]


@hydra.main(config_name="bench", **HYDRA_MAIN_KWARGS)
def main(cfg: DictConfig) -> None:
    """Run the configured reports into this run's folder."""
    command = " ".join(["python -m tinymem.bench", *sys.argv[1:]])
    run_bench(cfg, Path(HydraConfig.get().runtime.output_dir), command=command)


@hydra.main(config_name="bench_gpu", **HYDRA_MAIN_KWARGS)
def gpu_main(cfg: DictConfig) -> None:
    """Run the GPU parts into this run's folder (`logs/bench/gpu-<date>`)."""
    command = " ".join(["python -m tinymem.bench", GPU, *sys.argv[1:]])
    run_gpu(cfg, Path(HydraConfig.get().runtime.output_dir), command=command)


if __name__ == "__main__":
    if sys.argv[1:2] == [GPU]:
        sys.argv[1:] = gpu_arguments(sys.argv[2:])
        gpu_main()
    else:
        sys.argv[1:] = shorthand(sys.argv[1:])
        main()

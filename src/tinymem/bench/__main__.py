"""Entry point of `python -m tinymem.bench [report ...] [overrides]` (also `make bench`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from tinymem.bench.run import REPORTS, run_bench
from tinymem.config import HYDRA_MAIN_KWARGS


def shorthand(args: Sequence[str]) -> list[str]:
    """Bare report names become one override: `backbone` -> `reports=[backbone]`."""
    names = [a for a in args if a in REPORTS]
    rest = [a for a in args if a not in REPORTS]
    return [f"reports=[{','.join(names)}]", *rest] if names else rest


@hydra.main(config_name="bench", **HYDRA_MAIN_KWARGS)
def main(cfg: DictConfig) -> None:
    """Run the configured reports into this run's folder."""
    command = " ".join(["python -m tinymem.bench", *sys.argv[1:]])
    run_bench(cfg, Path(HydraConfig.get().runtime.output_dir), command=command)


if __name__ == "__main__":
    sys.argv[1:] = shorthand(sys.argv[1:])
    main()
